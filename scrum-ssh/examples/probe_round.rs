//! Measures a probe round: 100 hosts, concurrency 32, against one throwaway `sshd`.
//!
//! Each "host" is a loopback TCP relay to the same `sshd`, so the probe sees 100
//! distinct hosts, pins 100 host keys and opens 100 SSH connections. The first
//! round pays for the connections; the later rounds reuse them.
//!
//! ```text
//! cargo run --release -p scrum-ssh --example probe_round [HOSTS] [CONCURRENCY] [ROUNDS]
//! ```
//!
//! Needs `/usr/sbin/sshd` and `ssh-keygen`, and root (the sessions log in as the
//! current user).

use std::time::{Duration, Instant};

use scrum_core::HostHealth;
use scrum_ssh::testkit::TestSshd;
use scrum_ssh::{SshProbe, SshProbeConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let hosts_wanted = args.next().transpose()?.unwrap_or(100);
    let concurrency = args.next().transpose()?.unwrap_or(32);
    let rounds = args.next().transpose()?.unwrap_or(3).max(1);

    let mut sshd = TestSshd::start().await?;
    let hosts = sshd.relays(hosts_wanted).await?;
    let mut config = SshProbeConfig::new(sshd.user(), sshd.client_key(), sshd.dir().join("pins"));
    config.connect_timeout = Duration::from_secs(10);
    let probe = SshProbe::new(config)?;

    println!(
        "{} hosts (one sshd), concurrency {concurrency}",
        hosts.len()
    );
    for round in 1..=rounds {
        let cpu_before = own_cpu();
        let started = Instant::now();
        let reports = probe.probe_all(&hosts, concurrency).await;
        let took = started.elapsed();
        let cpu = own_cpu().saturating_sub(cpu_before);
        let healthy = reports
            .iter()
            .filter(|r| r.report.health == HostHealth::Healthy)
            .count();
        let mut rtts: Vec<Duration> = reports.iter().filter_map(|r| r.report.rtt).collect();
        rtts.sort();
        let median = rtts.get(rtts.len() / 2).copied().unwrap_or_default();
        let kind = if round == 1 {
            "new connections"
        } else {
            "reused connections"
        };
        println!(
            "round {round} ({kind}): {took:.3?}, {healthy}/{} healthy, median check rtt \
             {median:.2?}, probe process CPU {cpu:.2?}",
            reports.len()
        );
        if let Some(bad) = reports
            .iter()
            .find(|r| r.report.health != HostHealth::Healthy)
        {
            println!("  e.g. {}: {:?}", bad.host, bad.report.reason);
        }
    }
    println!("open connections: {}", probe.open_connections().await);
    probe.disconnect_all().await;
    Ok(())
}

/// This process's user + system CPU time so far (Linux `/proc/self/stat`, 100 Hz ticks).
fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}
