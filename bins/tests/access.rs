//! Who may read the API, seen from another machine: the real `scrum-orchestrator`
//! (with the fake GitHub, listening on all addresses, no API token) and a caller in
//! a network namespace of its own, joined to this one by a veth pair. Without a token
//! that caller is a stranger: `/queue` (issue titles), `/workers`, `/metrics` and
//! `/openapi.json` answer 403, and `/health` answers 200 without the issue's title.
//! Once its address is in `WORKER_IPS`, it may read the queue.
//!
//! Needs root and `ip` (iproute2) and `curl`, which `scripts/services.sh` installs;
//! the test fails, rather than skips, when it cannot build its network. The
//! namespace and the veth pair are removed at the end, pass or fail.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scrum_bins::fleet::Fleet;
use scrum_http::OrchestratorClient;
use scrum_http::wire::QueueQuery;

/// The issue a stranger must not learn of.
const TITLE: &str = "Acquire Zanzibar Widgets quietly";

/// A network namespace with one end of a veth pair, the other end here. Dropping it
/// removes both.
struct Netns {
    name: String,
    host_if: String,
    /// This side's address, where the orchestrator answers the namespace.
    host_ip: String,
    /// The namespace's address, the peer the orchestrator sees.
    ns_ip: String,
}

impl Netns {
    /// Creates a namespace and a veth pair with names and a /30 in 10.213.0.0/16
    /// of their own for this run, or panics saying what is missing.
    fn create() -> Netns {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().rotate_left(16);
        let tag = format!("{:06x}", seed & 0xff_ffff);
        let (third, fourth) = (1 + seed % 250, 4 * ((seed >> 8) % 63));
        let name = format!("scrum-access-{tag}");
        if let Err(e) = ip(&["netns", "add", &name]) {
            panic!(
                "cannot create a network namespace ({e}); this test needs root and iproute2 \
                 (scripts/services.sh installs it)"
            );
        }
        // The namespace is ours: from here on, dropping `ns` removes what was made.
        let ns = Netns {
            name,
            host_if: format!("sa{tag}h"),
            host_ip: format!("10.213.{third}.{}", fourth + 1),
            ns_ip: format!("10.213.{third}.{}", fourth + 2),
        };
        let (name, host, host_ip, ns_ip) = (&ns.name, &ns.host_if, &ns.host_ip, &ns.ns_ip);
        let peer = format!("sa{tag}n");
        let steps = [
            format!("link add {host} type veth peer name {peer}"),
            format!("link set {peer} netns {name}"),
            format!("addr add {host_ip}/30 dev {host}"),
            format!("link set {host} up"),
            format!("netns exec {name} ip addr add {ns_ip}/30 dev {peer}"),
            format!("netns exec {name} ip link set {peer} up"),
            format!("netns exec {name} ip link set lo up"),
        ];
        for step in &steps {
            let args: Vec<&str> = step.split_whitespace().collect();
            if let Err(e) = ip(&args) {
                panic!("cannot set up the test network: {e}");
            }
        }
        ns
    }

    /// `GET url` with curl from inside the namespace: the status and the body.
    async fn get(&self, url: &str) -> (u16, String) {
        let out = tokio::process::Command::new("ip")
            .args(["netns", "exec", &self.name, "curl", "-sS", "-m", "10"])
            .args(["-w", "\n%{http_code}", url])
            .output()
            .await
            .expect("running ip netns exec … curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        assert!(
            out.status.success(),
            "curl {url} from the namespace failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            if out.status.code() == Some(127) {
                " (is curl installed? scripts/services.sh installs it)"
            } else {
                ""
            }
        );
        (status.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; deleting the namespace, the rest.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs `ip args`; the error says which command failed and why.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether the queue, read from loopback, lists the issue.
async fn queued(client: &OrchestratorClient) -> bool {
    let query = QueueQuery {
        limit: Some(100),
        offset: None,
    };
    client
        .queue(&query)
        .await
        .is_ok_and(|q| q.pending.iter().any(|e| e.title == TITLE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_on_the_network_reads_only_health() {
    let ns = Netns::create();
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &[("acme/private", TITLE)])
        .await
        .unwrap();
    fleet.set_env("ORCHESTRATOR_HOST", "0.0.0.0");
    fleet.start_orchestrator().await.unwrap();
    let client = OrchestratorClient::new(&fleet.url()).unwrap();
    let port = fleet.url().rsplit(':').next().unwrap().to_string();
    let base = format!("http://{}:{port}", ns.host_ip);

    // Loopback reads the queue: the title is there to leak.
    let log = fleet.log("orchestrator");
    fleet
        .wait_for("the issue to be queued", Duration::from_secs(30), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("queued ready issues"))
        })
        .await;
    assert!(queued(&client).await, "loopback does not see the issue");

    for path in ["/queue", "/workers", "/metrics", "/openapi.json"] {
        let (status, body) = ns.get(&format!("{base}{path}")).await;
        assert_eq!(status, 403, "{path} from {}: {body}", ns.ns_ip);
        assert!(!body.contains(TITLE), "{path}: {body}");
        assert!(
            body.contains(&format!("add {} to WORKER_IPS", ns.ns_ip)) && body.contains("API token"),
            "{path}: the 403 does not say how to get in: {body}"
        );
    }
    let (status, body) = ns.get(&format!("{base}/health")).await;
    assert_eq!(status, 200, "/health: {body}");
    assert!(body.contains(r#""pending":1"#), "{body}");
    assert!(!body.contains(TITLE), "/health shows the title: {body}");

    // With its address in WORKER_IPS, the same caller may read the queue.
    fleet.set_env("WORKER_IPS", &ns.ns_ip);
    fleet.kill_orchestrator();
    fleet.start_orchestrator().await.unwrap();
    let (status, body) = ns.get(&format!("{base}/queue")).await;
    assert_eq!(status, 200, "/queue from a WORKER_IPS address: {body}");
    assert!(body.contains(TITLE), "{body}");
    let started = std::fs::read_to_string(&log).unwrap();
    assert!(
        started.contains(&format!("only loopback and WORKER_IPS ({})", ns.ns_ip)),
        "the start-up log does not state the rule in force:\n{started}"
    );
}
