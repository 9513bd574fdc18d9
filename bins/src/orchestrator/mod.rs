//! `scrum-orchestrator`: its command line ([`cli`]), its settings grouped by what
//! they configure ([`settings`]), the wiring of the store, the forges ([`forges`]: GitHub,
//! GitLab), the SSH probe and the HTTP API ([`service`]), and the operator subcommands that talk to a running
//! orchestrator ([`operator`]), and `doctor`, which checks a configuration without
//! starting the service ([`doctor`]). [`run`] is what the binary does once its settings
//! are read ([`settings::load`]).

pub mod cli;
pub mod doctor;
pub mod forges;
pub mod notify;
pub mod operator;
pub mod service;
pub mod settings;

use clap::CommandFactory;

pub use cli::{Operator, OrchestratorCli, Remote};
pub use operator::operate;
pub use service::Service;
pub use settings::{Loaded, ServeArgs, default_state_dir, load};

/// Runs what the command line asks: the service until `shutdown` completes, or a
/// subcommand.
pub async fn run(
    loaded: Loaded,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Loaded { cli, matches, file } = loaded;
    match cli.command {
        Some(Operator::Settings) => {
            let cmd = OrchestratorCli::command();
            print!(
                "{}",
                settings::table::effective(&matches, file.as_ref(), &cmd)
            );
            Ok(())
        }
        Some(Operator::Doctor(args)) => {
            let mut report = crate::doctor::Report::printed();
            doctor::check(&cli.serve, &args, &mut report).await;
            report.verdict().map_err(anyhow::Error::new)
        }
        Some(op) => operate(op).await,
        None => {
            crate::logging::init(&cli.serve.log, None)?;
            cli.serve.validate()?.run(shutdown).await
        }
    }
}
