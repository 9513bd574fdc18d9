//! The probe against a real OpenSSH server started on a loopback port
//! (`scrum_ssh::testkit::TestSshd`), with stand-in `systemctl`/`journalctl` scripts.

use std::time::{Duration, Instant};

use scrum_core::{ErrorKind, HostHealth, WorkerProbe};
use scrum_ssh::testkit::{TestSshd, process_alive};
use scrum_ssh::{PINS_FILE, SshProbe, SshProbeConfig};

fn config(sshd: &TestSshd) -> SshProbeConfig {
    let mut config = SshProbeConfig::new(sshd.user(), sshd.client_key(), sshd.dir().join("state"));
    config.connect_timeout = Duration::from_secs(3);
    config.command_timeout = Duration::from_secs(3);
    config
}

fn logins(sshd: &TestSshd) -> usize {
    let log = std::fs::read_to_string(sshd.dir().join("sshd.log")).unwrap();
    log.matches("Accepted publickey").count()
}

#[tokio::test]
async fn a_running_service_is_healthy_and_the_connection_is_reused() {
    let sshd = TestSshd::start().await.unwrap();
    let probe = SshProbe::new(config(&sshd)).unwrap();

    let first = probe.probe(&sshd.host()).await;
    assert_eq!(first.health, HostHealth::Healthy, "{first:?}");
    assert!(first.rtt.is_some_and(|rtt| rtt < Duration::from_secs(3)));
    assert_eq!(first.reason, None);
    let second = probe.probe(&sshd.host()).await;
    assert_eq!(second.health, HostHealth::Healthy, "{second:?}");

    assert_eq!(logins(&sshd), 1, "the second probe logged in again");
    assert_eq!(probe.open_connections().await, 1);
    assert_eq!(
        sshd.calls(),
        [
            "systemctl is-active ai-scrum-worker",
            "systemctl is-active ai-scrum-worker"
        ]
    );
}

#[tokio::test]
async fn an_inactive_service_is_degraded_and_restart_brings_it_back() {
    let sshd = TestSshd::start().await.unwrap();
    let mut config = config(&sshd);
    config.unit = "worker@1.service".to_string();
    let probe = SshProbe::new(config).unwrap();
    sshd.set_service_state("failed").unwrap();

    let report = probe.probe(&sshd.host()).await;
    assert_eq!(report.health, HostHealth::Degraded);
    assert!(report.rtt.is_some());
    let reason = report.reason.unwrap();
    assert!(reason.contains("worker@1.service is failed"), "{reason}");

    sshd.set_service_state("not-found").unwrap();
    let error = probe.restart(&sshd.host()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    let message = error.to_string();
    assert!(
        message.contains("exited 5: Failed to restart worker@1.service"),
        "{message}"
    );

    sshd.set_service_state("failed").unwrap();
    probe.restart(&sshd.host()).await.unwrap();
    assert_eq!(probe.probe(&sshd.host()).await.health, HostHealth::Healthy);
    assert!(
        sshd.calls()
            .contains(&"systemctl restart --no-block worker@1.service".to_string())
    );
}

#[tokio::test]
async fn logs_are_the_last_lines_of_the_units_journal() {
    let sshd = TestSshd::start().await.unwrap();
    let probe = SshProbe::new(config(&sshd)).unwrap();
    sshd.set_journal("one\ntwo\nthree\nfour\n").unwrap();

    let logs = probe.logs(&sshd.host(), 2).await.unwrap();
    assert_eq!(logs, "three\nfour\n");
    assert_eq!(
        sshd.calls(),
        ["journalctl -u ai-scrum-worker -n 2 --no-pager"]
    );
}

#[tokio::test]
async fn an_rsa_key_logs_in() {
    let sshd = TestSshd::start().await.unwrap();
    let mut config = config(&sshd);
    config.key_path = sshd.rsa_client_key().unwrap();
    let probe = SshProbe::new(config).unwrap();
    let report = probe.probe(&sshd.host()).await;
    assert_eq!(report.health, HostHealth::Healthy, "{report:?}");
}

#[tokio::test]
async fn a_key_the_server_does_not_know_is_refused() {
    let sshd = TestSshd::start().await.unwrap();
    let mut config = config(&sshd);
    config.key_path = sshd.stranger_key().unwrap();
    let probe = SshProbe::new(config).unwrap();

    let report = probe.probe(&sshd.host()).await;
    assert_eq!(report.health, HostHealth::Unreachable);
    let reason = report.reason.unwrap();
    assert!(reason.contains("refused WORKER_SSH_KEY"), "{reason}");
    let error = probe.logs(&sshd.host(), 5).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(sshd.calls().is_empty(), "a command ran without a valid key");
}

#[tokio::test]
async fn missing_encrypted_or_bogus_keys_are_refused_at_start_up() {
    let sshd = TestSshd::start().await.unwrap();
    let dir = sshd.dir();
    let encrypted = dir.join("encrypted");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
        .arg(&encrypted)
        .status()
        .unwrap();
    assert!(keygen.success());
    std::fs::write(dir.join("bogus"), "not a key\n").unwrap();

    for (path, expected) in [
        (dir.join("absent"), "no such file"),
        (encrypted, "encrypted with a passphrase"),
        (dir.join("bogus"), "not a supported private key"),
        (dir.to_path_buf(), "cannot be read"),
    ] {
        let mut config = config(&sshd);
        config.key_path = path.clone();
        let error = SshProbe::new(config).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Invalid);
        let message = error.to_string();
        assert!(message.contains("WORKER_SSH_KEY"), "{message}");
        assert!(message.contains(expected), "{path:?}: {message}");
    }
}

#[tokio::test]
async fn an_unknown_host_key_is_pinned_and_a_changed_one_refused() {
    let mut sshd = TestSshd::start().await.unwrap();
    let probe = SshProbe::new(config(&sshd)).unwrap();
    assert_eq!(probe.probe(&sshd.host()).await.health, HostHealth::Healthy);
    let pins_file = sshd.dir().join("state").join(PINS_FILE);
    let pins = std::fs::read_to_string(&pins_file).unwrap();
    assert!(
        pins.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port())),
        "{pins}"
    );

    sshd.replace_host_key().await.unwrap();
    let calls_before = sshd.calls().len();
    for probe in [probe, SshProbe::new(config(&sshd)).unwrap()] {
        let report = probe.probe(&sshd.host()).await;
        assert_eq!(report.health, HostHealth::Unreachable);
        let reason = report.reason.unwrap();
        assert!(reason.contains("HOST KEY CHANGED"), "{reason}");
        assert!(reason.contains("SHA256:"), "{reason}");
    }
    assert_eq!(
        std::fs::read_to_string(&pins_file).unwrap(),
        pins,
        "the pin was replaced"
    );
    assert_eq!(
        sshd.calls().len(),
        calls_before,
        "a command ran on an untrusted host"
    );
}

#[tokio::test]
async fn a_known_hosts_file_is_the_only_authority() {
    let mut sshd = TestSshd::start().await.unwrap();
    let mut config = config(&sshd);
    config.known_hosts = Some(sshd.known_hosts().unwrap());
    let probe = SshProbe::new(config.clone()).unwrap();
    assert_eq!(probe.probe(&sshd.host()).await.health, HostHealth::Healthy);
    assert!(
        !config.pin_dir.join(PINS_FILE).exists(),
        "pinned despite known_hosts"
    );

    // A hashed file (`ssh-keygen -H`, `HashKnownHosts yes`) works the same.
    let known_hosts = config.known_hosts.clone().unwrap();
    let hashed = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&known_hosts)
        .output()
        .unwrap();
    assert!(hashed.status.success());
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(
        text.contains("|1|") && !text.contains("127.0.0.1"),
        "{text}"
    );
    let report = SshProbe::new(config.clone())
        .unwrap()
        .probe(&sshd.host())
        .await;
    assert_eq!(report.health, HostHealth::Healthy, "{report:?}");

    // Another port is another host: not in the file, so refused, never pinned.
    let mut other = TestSshd::start().await.unwrap();
    let report = probe.probe(&other.host()).await;
    assert_eq!(report.health, HostHealth::Unreachable);
    assert!(report.reason.unwrap().contains("not in known_hosts"));
    other.stop().await;

    sshd.replace_host_key().await.unwrap();
    let report = SshProbe::new(config.clone())
        .unwrap()
        .probe(&sshd.host())
        .await;
    assert!(report.reason.unwrap().contains("HOST KEY CHANGED"));

    config.known_hosts = Some(sshd.dir().join("no-such-known-hosts"));
    assert_eq!(
        SshProbe::new(config).unwrap_err().kind(),
        ErrorKind::Invalid
    );
}

#[tokio::test]
async fn a_stopped_server_is_unreachable_within_the_timeout() {
    let mut sshd = TestSshd::start().await.unwrap();
    let probe = SshProbe::new(config(&sshd)).unwrap();
    assert_eq!(probe.probe(&sshd.host()).await.health, HostHealth::Healthy);

    sshd.stop().await;
    let started = Instant::now();
    let report = probe.probe(&sshd.host()).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(report.health, HostHealth::Unreachable);
    assert!(report.reason.unwrap().contains("connection refused"));
    let error = probe.logs(&sshd.host(), 5).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);

    sshd.restart().await.unwrap();
    assert_eq!(probe.probe(&sshd.host()).await.health, HostHealth::Healthy);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let sshd = TestSshd::start().await.unwrap();
    // Accepts TCP connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = silent.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let mut config = config(&sshd);
    config.connect_timeout = Duration::from_millis(500);
    let probe = SshProbe::new(config).unwrap();

    let started = Instant::now();
    let report = probe.probe(&host).await;
    let took = started.elapsed();
    assert_eq!(report.health, HostHealth::Unreachable);
    assert!(report.reason.unwrap().contains("connect timeout"));
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(2),
        "took {took:?}"
    );
    held.abort();
}

#[tokio::test]
async fn a_host_that_freezes_is_unreachable_and_its_connection_replaced() {
    let sshd = TestSshd::start().await.unwrap();
    let mut config = config(&sshd);
    config.command_timeout = Duration::from_secs(1);
    let probe = SshProbe::new(config).unwrap();
    assert_eq!(probe.probe(&sshd.host()).await.health, HostHealth::Healthy);

    sshd.freeze(true);
    let started = Instant::now();
    let report = probe.probe(&sshd.host()).await;
    let took = started.elapsed();
    sshd.freeze(false);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(report.health, HostHealth::Unreachable, "{report:?}");
    assert!(report.reason.unwrap().contains("within 1s"));

    assert_eq!(probe.probe(&sshd.host()).await.health, HostHealth::Healthy);
    assert_eq!(logins(&sshd), 2, "the frozen connection was reused");
}

#[tokio::test]
async fn a_hung_command_is_killed_and_reported() {
    let sshd = TestSshd::start().await.unwrap();
    let mut config = config(&sshd);
    config.command_timeout = Duration::from_secs(1);
    let probe = SshProbe::new(config).unwrap();
    sshd.hang_commands(true).unwrap();

    let started = Instant::now();
    let report = probe.probe(&sshd.host()).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(report.health, HostHealth::Degraded, "{report:?}");
    assert!(report.reason.unwrap().contains("did not finish within 1s"));

    // The remote `sleep 300` the stand-in started must be gone, not left running.
    let pid = sshd.hung_pid().expect("the stand-in recorded its pid");
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !process_alive(pid),
        "the hung remote command {pid} is still running; sshd log:\n{}",
        std::fs::read_to_string(sshd.dir().join("sshd.log")).unwrap()
    );

    sshd.hang_commands(false).unwrap();
    assert_eq!(probe.probe(&sshd.host()).await.health, HostHealth::Healthy);
    assert_eq!(
        logins(&sshd),
        1,
        "the connection was not reused after the kill"
    );
}

#[tokio::test]
async fn a_round_reports_every_host_in_order() {
    let mut sshd = TestSshd::start().await.unwrap();
    let mut hosts = sshd.relays(5).await.unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    hosts.insert(2, dead.clone());
    hosts.push("not a host".to_string());
    let probe = SshProbe::new(config(&sshd)).unwrap();

    for _round in 0..2 {
        let reports = probe.probe_all(&hosts, 3).await;
        let got: Vec<(&str, HostHealth)> = reports
            .iter()
            .map(|r| (r.host.as_str(), r.report.health))
            .collect();
        let expected: Vec<(&str, HostHealth)> = hosts
            .iter()
            .map(|h| {
                let healthy = *h != dead && h != "not a host";
                (
                    h.as_str(),
                    if healthy {
                        HostHealth::Healthy
                    } else {
                        HostHealth::Unreachable
                    },
                )
            })
            .collect();
        assert_eq!(got, expected);
    }
    assert_eq!(
        logins(&sshd),
        5,
        "the second round did not reuse connections"
    );
    assert_eq!(probe.open_connections().await, 5);
    probe.disconnect(&hosts[0]).await;
    assert_eq!(probe.open_connections().await, 4);
    probe.disconnect_all().await;
    assert_eq!(probe.open_connections().await, 0);
}

#[tokio::test]
async fn debug_output_shows_no_key_material() {
    let sshd = TestSshd::start().await.unwrap();
    let config = config(&sshd);
    let probe = SshProbe::new(config.clone()).unwrap();
    let key = std::fs::read_to_string(sshd.client_key()).unwrap();
    let secret_line = key.lines().nth(1).unwrap();
    for shown in [format!("{config:?}"), format!("{probe:?}")] {
        assert!(!shown.contains(&secret_line[..20]), "{shown}");
    }
}
