//! GitLab at a real distance: the fake GitLab holds every answer back by
//! `--latency-ms` (100 ms by default), and the GitLab client does what one poll of
//! the orchestrator asks of it for `--issues N` newly labelled issues of one project
//! in a nested group: list the ready issues, read who labelled each (the trust
//! rules' `provenance`), then list again with nothing changed. Prints how long each
//! took and the requests each cost per issue, against GitLab's rate limit.
//!
//! ```sh
//! cargo run -p scrum-gitlab --features fake --example gitlab_latency -- --issues 100 --latency-ms 100
//! ```

use std::time::{Duration, Instant};

use scrum_core::{IssueSource, Labels, RepoName};
use scrum_gitlab::fake::{FakeGitLab, NewIssue, access};
use scrum_gitlab::{GitLabClient, GitLabConfig};

const PROJECT: &str = "acme/platform/api";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut issues, mut latency) = (100_usize, 100_u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} takes a number"))?;
        match flag.as_str() {
            "--issues" => issues = usize::try_from(value)?,
            "--latency-ms" => latency = value,
            other => {
                return Err(format!("unknown flag {other}: --issues N, --latency-ms MS").into());
            }
        }
    }
    let gitlab = FakeGitLab::start().await;
    gitlab.add_project(PROJECT);
    gitlab.add_member(PROJECT, "maya", access::DEVELOPER);
    let mut ids = Vec::new();
    for n in 1..=issues {
        let id = gitlab.add_issue(PROJECT, NewIssue::new(&format!("Issue {n}")));
        gitlab.label_as(&id, &["ai-ready"], "maya");
        ids.push(id);
    }
    gitlab.set_latency(Duration::from_millis(latency));
    let project: RepoName = format!("gitlab:{PROJECT}").parse()?;
    let config = GitLabConfig::new(&gitlab.url(), FakeGitLab::TOKEN, vec![project])?
        .with_labels(Labels::default());
    let client = GitLabClient::new(config)?;
    println!("GitLab latency {latency} ms, {issues} newly labelled issues in gitlab:{PROJECT}");

    let step = |what: &str, took: Duration, requests: usize| {
        println!(
            "  {what}: {:.2} s, {requests} requests ({:.2} per issue)",
            took.as_secs_f64(),
            requests as f64 / issues as f64
        );
    };
    let mut seen = 0;
    let mut measure = |gitlab: &FakeGitLab| {
        let all = gitlab.requests();
        let new = all.len() - seen;
        seen = all.len();
        (
            new,
            all[all.len() - new..]
                .iter()
                .filter(|r| r.status == 304)
                .count(),
        )
    };
    let started = Instant::now();
    let ready = client.list_ready().await?;
    let (requests, _) = measure(&gitlab);
    step("listing the ready issues", started.elapsed(), requests);
    assert_eq!(ready.len(), issues, "every labelled issue is ready");

    let started = Instant::now();
    let vouched = client.provenance(&ids, false).await?;
    let (requests, _) = measure(&gitlab);
    step("who labelled each (trust)", started.elapsed(), requests);
    let approved = vouched
        .iter()
        .filter(|p| p.as_ref().is_ok_and(|p| p.labelled_by.may_approve))
        .count();
    println!("  {approved} of {issues} labelled by a Developer");

    let started = Instant::now();
    client.list_ready().await?;
    let (requests, unchanged) = measure(&gitlab);
    step(
        "listing again, nothing changed",
        started.elapsed(),
        requests,
    );
    println!("  {unchanged} of those answered 304 Not Modified");
    Ok(())
}
