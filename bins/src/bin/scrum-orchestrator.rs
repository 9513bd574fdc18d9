//! `scrum-orchestrator`: parses configuration, then runs the service or an operator
//! subcommand. Everything else is library code (`scrum_bins::orchestrator`).

use clap::Parser;
use scrum_bins::{logging, orchestrator::OrchestratorCli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = OrchestratorCli::parse();
    let result = match cli.command {
        Some(op) => scrum_bins::orchestrator::operate(op).await,
        None => match logging::init(&cli.serve.log, None).and_then(|()| cli.serve.validate()) {
            Ok(service) => service.run(logging::shutdown_signal()).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scrum-orchestrator: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
