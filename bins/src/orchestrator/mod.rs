//! `scrum-orchestrator`: its configuration and command line ([`cli`]), the wiring of
//! the store, GitHub, the SSH probe and the HTTP API ([`service`]), and the operator
//! subcommands that talk to a running orchestrator ([`operator`]).

pub mod cli;
pub mod notify;
pub mod operator;
pub mod service;

pub use cli::{Operator, OrchestratorCli, Remote, ServeArgs, default_state_dir};
pub use operator::operate;
pub use service::Service;
