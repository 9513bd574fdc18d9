//! The operator subcommands: each calls a running orchestrator's HTTP API and prints
//! its answer as JSON.

use scrum_http::wire::{EffectState, EffectsRetryRequest};
use scrum_http::{ApiToken, OrchestratorClient};

use super::cli::{EffectsAction, NotifyAction, Operator};

/// Runs an operator subcommand and prints its answer as JSON.
pub async fn operate(op: Operator) -> anyhow::Result<()> {
    let remote = match &op {
        Operator::Notify {
            action: NotifyAction::Test(args),
        } => return super::notify::send_test(args).await,
        Operator::Settings | Operator::Doctor(_) => {
            anyhow::bail!(
                "`settings` and `doctor` read this host's settings, not the API's: see `run`"
            )
        }
        Operator::Status(r) | Operator::Queue(r) | Operator::Workers(r) => r,
        Operator::Retry { remote, .. } | Operator::Cancel { remote, .. } => remote,
        Operator::Effects {
            action: Some(EffectsAction::Retry { remote, .. }),
            ..
        } => remote,
        Operator::Effects { remote, .. } => remote,
    };
    let mut client = OrchestratorClient::new(&remote.url).map_err(anyhow::Error::msg)?;
    if let Some(t) = &remote.token {
        client = client.with_token(ApiToken::new(t.expose()).map_err(anyhow::Error::msg)?);
    }
    let reach = |e: scrum_core::Error| anyhow::anyhow!("orchestrator at {}: {e}", remote.url);
    let out = match &op {
        Operator::Status(_) => serde_json::to_value(client.health().await.map_err(reach)?)?,
        Operator::Queue(_) => {
            serde_json::to_value(client.queue(&Default::default()).await.map_err(reach)?)?
        }
        Operator::Workers(_) => serde_json::to_value(client.workers().await.map_err(reach)?)?,
        Operator::Retry { task, .. } => {
            serde_json::to_value(client.retry(task).await.map_err(reach)?)?
        }
        Operator::Cancel { task, reason, .. } => {
            serde_json::to_value(client.cancel(task, reason).await.map_err(reach)?)?
        }
        Operator::Effects {
            action: Some(EffectsAction::Retry { repo, id, .. }),
            ..
        } => {
            let which = EffectsRetryRequest {
                repository: repo.as_ref().map(ToString::to_string),
                id: *id,
            };
            serde_json::to_value(client.retry_effects(&which).await.map_err(reach)?)?
        }
        Operator::Notify { .. } | Operator::Settings | Operator::Doctor(_) => {
            unreachable!("answered above")
        }
        Operator::Effects { dead, .. } => {
            let state = dead.then_some(EffectState::Dead);
            serde_json::to_value(client.effects(state).await.map_err(reach)?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
