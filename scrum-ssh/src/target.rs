//! [`Target`]: a host string (`ip`, `ip:port`, `[v6]:port`, `name`, `name:port`) parsed.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use scrum_core::{Error, Result};

/// Where one worker host's SSH server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    /// An IP address or a DNS name, without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    /// Parses `text`, using `default_port` when it names no port.
    pub(crate) fn parse(text: &str, default_port: u16) -> Result<Target> {
        let text = text.trim();
        let bad = || Error::invalid(format!("worker host {text:?} is not `host` or `host:port`"));
        if text.is_empty() {
            return Err(bad());
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Target {
                host: ip.to_string(),
                port: default_port,
            });
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(bad());
            }
            return Ok(Target {
                host: addr.ip().to_string(),
                port: addr.port(),
            });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(bad)?,
            ),
            None => (text, default_port),
        };
        let is_name = host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !is_name {
            return Err(bad());
        }
        Ok(Target {
            host: host.to_string(),
            port,
        })
    }

    /// The name the host goes by in a `known_hosts` file: `host` on port 22,
    /// `[host]:port` otherwise (OpenSSH's convention).
    pub(crate) fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_host_forms_worker_ips_uses() {
        let t = |s| Target::parse(s, 22).unwrap();
        assert_eq!(
            t("10.0.0.5"),
            Target {
                host: "10.0.0.5".into(),
                port: 22
            }
        );
        assert_eq!(
            t("10.0.0.5:2222"),
            Target {
                host: "10.0.0.5".into(),
                port: 2222
            }
        );
        assert_eq!(
            t("[::1]:2200"),
            Target {
                host: "::1".into(),
                port: 2200
            }
        );
        assert_eq!(
            t("::1"),
            Target {
                host: "::1".into(),
                port: 22
            }
        );
        assert_eq!(
            t("worker-1.lan:23"),
            Target {
                host: "worker-1.lan".into(),
                port: 23
            }
        );
        assert_eq!(t("[::1]:2200").known_hosts_name(), "[::1]:2200");
        assert_eq!(t("10.0.0.5").known_hosts_name(), "10.0.0.5");
        assert_eq!(t("[::1]:2200").to_string(), "[::1]:2200");
    }

    #[test]
    fn refuses_what_is_not_a_host() {
        for bad in [
            "",
            "a b",
            "h:0",
            "h:port",
            "10.0.0.5:99999",
            "x;id",
            "a..b",
            "u@h",
        ] {
            assert!(Target::parse(bad, 22).is_err(), "{bad:?} accepted");
        }
    }
}
