//! `scrum-orchestrator`: reads its settings (flags, environment, settings file), then
//! runs the service or a subcommand. Everything else is library code
//! (`scrum_bins::orchestrator`).

use scrum_bins::{logging, orchestrator};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = match orchestrator::load(std::env::args_os()) {
        Ok(loaded) => orchestrator::run(loaded, logging::shutdown_signal()).await,
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(usage) => usage.exit(),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `doctor` printed each failure; the count ends its output.
        Err(e) if e.is::<scrum_bins::doctor::ChecksFailed>() => {
            eprintln!("scrum-orchestrator doctor: {e}");
            std::process::ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("scrum-orchestrator: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
