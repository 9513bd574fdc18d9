//! `scrum-worker`: parses configuration and runs the worker loop until SIGTERM or
//! SIGINT; or runs `workflow` or `doctor`. Everything else is library code (`scrum_bins::worker`).

use clap::Parser;
use scrum_bins::logging;
use scrum_bins::worker::doctor::WorkerDoctorCli;
use scrum_bins::worker::{WorkerCli, WorkflowCli};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(parsed) = WorkflowCli::from_args(&args) {
        let done = parsed.map_err(|e| e.exit()).and_then(|w| w.run());
        return match done {
            Ok(text) => {
                print!("{text}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("scrum-worker: {e:#}");
                std::process::ExitCode::from(2)
            }
        };
    }
    if let Some(parsed) = WorkerDoctorCli::from_args(&args) {
        let doctor = parsed.unwrap_or_else(|e| e.exit());
        let mut report = scrum_bins::doctor::Report::printed();
        doctor.check(&mut report).await;
        return match report.verdict() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(failed) => {
                eprintln!("scrum-worker doctor: {failed}");
                std::process::ExitCode::from(1)
            }
        };
    }
    let cli = WorkerCli::parse();
    if let Err(e) = logging::init(&cli.log, Some(cli.worker_id.as_str())) {
        eprintln!("scrum-worker: {e:#}");
        return std::process::ExitCode::from(2);
    }
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        logging::shutdown_signal().await;
        on_signal.cancel();
    });
    match cli.run(shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scrum-worker: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
