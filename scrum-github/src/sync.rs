//! Locking the client's small caches.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, going on with the data when a holder panicked: every cache it guards
/// stays usable after any update, complete or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
