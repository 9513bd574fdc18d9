//! [`run`]: everything an orchestrator process runs, in one call. The
//! `scrum-orchestrator` binary is configuration around it; an embedder calls it with
//! an engine of its own making.

use std::future::Future;

use scrum_core::{Error, ErrorKind, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::{ApiState, serve};

/// Runs the orchestrator behind `state` until `shutdown` completes:
///
/// 1. gives the tasks held when it starts one lease period to report in
///    ([`Orchestrator::resume_leases`](scrum_core::engine::Orchestrator::resume_leases)),
///    before any worker is served;
/// 2. runs the engine's duties ([`Orchestrator::run`](scrum_core::engine::Orchestrator::run):
///    the GitHub poll, the lease reaper, the outbox dispatcher and the host probe, on
///    the leader when the store is shared);
/// 3. serves the HTTP API on `listener`, the webhook route included when
///    [`ApiConfig::webhook`](crate::ApiConfig::webhook) is set.
///
/// On shutdown the duties stop (a leader hands its lease over), requests in flight
/// finish (a long poll within the engine's maximum wait), and it returns. It fails
/// when the store cannot resume leases, or when the server stops on its own.
pub async fn run(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let orchestrator = state.orchestrator().clone();
    orchestrator.resume_leases().await?;
    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut server = tokio::spawn(serve(listener, state, until_stopped()));
    let engine = tokio::spawn({
        let until = until_stopped();
        async move { orchestrator.run(until).await }
    });
    let early = tokio::select! {
        () = shutdown => None,
        ended = &mut server => Some(ended),
    };
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop.send(true);
    let engine = engine.await;
    let ended_early = early.is_some();
    let served = match early {
        Some(ended) => ended,
        None => server.await,
    };
    engine.map_err(|e| internal("the engine", e))?;
    match served {
        Ok(Ok(())) if !ended_early => Ok(()),
        Ok(Ok(())) => Err(Error::new(ErrorKind::Internal, "the HTTP server stopped")),
        Ok(Err(e)) => {
            Err(Error::new(ErrorKind::Unavailable, format!("HTTP server: {e}")).with_source(e))
        }
        Err(e) => Err(internal("the HTTP server", e)),
    }
}

fn internal(what: &str, e: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Internal, format!("{what} stopped: {e}"))
}
