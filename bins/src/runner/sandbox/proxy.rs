//! The worker's filtering proxy for bubblewrap sandboxes: an HTTP proxy on a Unix
//! socket (bridged into each sandbox's empty network) that connects only to the
//! allowed hosts. `CONNECT host:port` (HTTPS) is tunnelled; a plain-HTTP request in
//! absolute form (`GET http://host:port/…`) is forwarded as it came. Every other
//! destination gets `403`: what goes through a connection can only reach the host
//! it was opened to.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// The longest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;

/// The hosts the proxy connects to: `host` (any port), `host:port`, `*.domain`
/// (any name under it) or `*.domain:port`; names compare without case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<(String, Option<u16>)>);

impl AllowList {
    /// The list of `entries`.
    pub fn new(entries: &[String]) -> AllowList {
        AllowList(
            entries
                .iter()
                .map(|e| {
                    let e = e.trim().to_ascii_lowercase();
                    match e.rsplit_once(':') {
                        Some((h, p)) if p.parse::<u16>().is_ok() && !h.contains(':') => {
                            (h.to_string(), p.parse().ok())
                        }
                        _ => (e, None),
                    }
                })
                .filter(|(h, _)| !h.is_empty())
                .collect(),
        )
    }

    /// Whether `host:port` may be reached.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().any(|(h, p)| {
            let name = match h.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => *h == host,
            };
            name && p.is_none_or(|p| p == port)
        })
    }
}

/// Listens on `socket` (replacing a stale one) and serves each connection on the
/// current Tokio runtime, for as long as the runtime runs.
pub fn serve(socket: &Path, allow: AllowList) -> std::io::Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let allow = allow.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(conn, &allow).await {
                    tracing::debug!("sandbox proxy: {e}");
                }
            });
        }
    });
    Ok(())
}

async fn handle(mut conn: UnixStream, allow: &AllowList) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD {
            return refuse(&mut conn, "400 Bad Request", "request head too long").await;
        }
    };
    let line = String::from_utf8_lossy(&head[..head.iter().position(|b| *b == b'\r').unwrap_or(0)])
        .into_owned();
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let connect = method.eq_ignore_ascii_case("CONNECT");
    let Some((host, port)) = destination(target, connect) else {
        return refuse(&mut conn, "400 Bad Request", "not a proxy request").await;
    };
    if !allow.allows(&host, port) {
        tracing::info!(host = %host, port, "sandbox proxy refused a host not on SANDBOX_ALLOW_HOSTS");
        let why =
            format!("{host}:{port} is not on the sandbox's allowed hosts (SANDBOX_ALLOW_HOSTS)");
        return refuse(&mut conn, "403 Forbidden", &why).await;
    }
    let mut upstream = match TcpStream::connect((host.as_str(), port)).await {
        Ok(s) => s,
        Err(e) => return refuse(&mut conn, "502 Bad Gateway", &e.to_string()).await,
    };
    if connect {
        conn.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        upstream.write_all(&head[end..]).await?;
    } else {
        upstream.write_all(&head).await?;
    }
    tokio::io::copy_bidirectional(&mut conn, &mut upstream).await?;
    Ok(())
}

/// The host and port a request goes to: `host:port` for CONNECT, the URL's for an
/// absolute-form request.
fn destination(target: &str, connect: bool) -> Option<(String, u16)> {
    let (authority, default_port) = if connect {
        (target, 443)
    } else {
        let rest = target.strip_prefix("http://")?;
        (rest.split('/').next()?, 80)
    };
    let authority = authority.rsplit('@').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, p.parse().ok()?),
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

async fn refuse(conn: &mut UnixStream, status: &str, why: &str) -> std::io::Result<()> {
    let body = format!("blocked by the worker's sandbox: {why}\n");
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(reply.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_by_name_port_and_wildcard() {
        let list = AllowList::new(&[
            "api.anthropic.com".into(),
            "127.0.0.1:8080".into(),
            "*.npmjs.org:443".into(),
        ]);
        assert!(list.allows("API.anthropic.com", 443));
        assert!(list.allows("127.0.0.1", 8080));
        assert!(!list.allows("127.0.0.1", 8000));
        assert!(list.allows("registry.npmjs.org", 443));
        assert!(!list.allows("registry.npmjs.org", 80));
        assert!(!list.allows("npmjs.org.evil.example", 443));
        assert!(!list.allows("169.254.169.254", 80));
    }

    #[test]
    fn destinations_come_from_connect_or_absolute_urls() {
        assert_eq!(
            destination("example.com:443", true),
            Some(("example.com".into(), 443))
        );
        assert_eq!(
            destination("http://127.0.0.1:9/v1?x", false),
            Some(("127.0.0.1".into(), 9))
        );
        assert_eq!(
            destination("http://u:p@host/x", false),
            Some(("host".into(), 80))
        );
        assert_eq!(destination("/relative", false), None);
    }
}
