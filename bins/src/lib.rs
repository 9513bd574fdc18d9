//! Placeholder: the binaries arrive with their own issue.
