//! `scrum-demo --keep`: once every issue finished, the fleet stays up with its
//! dashboard answering, and Ctrl-C (SIGINT) stops it cleanly. Runs the demo binary
//! as a user does; it needs `scrum-orchestrator` and `scrum-worker` built beside it
//! (`scripts/test` builds every binary of the workspace first).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The status line and body of `GET path` on `addr` (`127.0.0.1:PORT`).
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("the orchestrator answers");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn keep_leaves_the_dashboard_answering_until_interrupted() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_scrum-demo"))
        .arg("--keep")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut seen = Vec::new();
    let mut addr = None;
    // The demo gives up by itself after 3 minutes, so this read ends.
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("orchestrator API http://") {
            addr = rest.split_whitespace().next().map(str::to_string);
        }
        let up = line.contains("the fleet stays up");
        seen.push(line);
        if up {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(text.contains("8 of 8 issues completed"), "{text}");
    let addr = addr.unwrap_or_else(|| panic!("no API address printed:\n{text}"));

    let (status, page) = get(&addr, "/ui/queue");
    assert!(status.contains(" 200"), "{status}\n{page}");
    assert!(page.contains("completed"), "{page}");
    let (_, queue) = get(&addr, "/queue?limit=100");
    let queue: serde_json::Value = serde_json::from_str(&queue).unwrap();
    assert_eq!(
        queue["completed"].as_array().map(Vec::len),
        Some(8),
        "{queue}"
    );

    let pid = demo.id().to_string();
    let interrupted = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(interrupted.success());
    // Read on (its last lines), so the demo never writes into a closed pipe.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the orchestrator stopped with it"
    );
}
