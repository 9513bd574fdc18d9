//! A throwaway OpenSSH server for tests and examples (feature `testkit`).
//!
//! [`TestSshd`] runs `/usr/sbin/sshd` on a free loopback port with its own config,
//! host key and authorized client keys in a scratch directory, and puts stand-in
//! `systemctl` and `journalctl` scripts first on the session's `PATH` (the test
//! machines have no systemd). The stand-ins answer from files the test controls:
//! the service state, the journal, and whether commands hang.
//!
//! Needs `/usr/sbin/sshd` and `ssh-keygen` (Debian: `openssh-server`) and root, or a
//! user sshd may switch to (the sessions log in as the current user).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;
use tokio::task::JoinHandle;

/// The path of OpenSSH's server.
pub const SSHD: &str = "/usr/sbin/sshd";

/// How long [`TestSshd::start`] waits for the server to greet.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A running throwaway `sshd`, stopped and its directory removed on drop.
#[derive(Debug)]
pub struct TestSshd {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    relays: Vec<JoinHandle<()>>,
}

impl TestSshd {
    /// Creates keys, config and stand-ins in a new scratch directory and starts
    /// `sshd`, returning once it answers with an SSH banner.
    pub async fn start() -> io::Result<TestSshd> {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("scrum-ssh-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin"))?;
        std::fs::create_dir_all("/run/sshd")?;
        let mut sshd = TestSshd {
            dir,
            port: 0,
            child: None,
            relays: Vec::new(),
        };
        keygen(&sshd.path("host_ed25519"), "ed25519")?;
        keygen(&sshd.path("client_ed25519"), "ed25519")?;
        std::fs::copy(
            sshd.path("client_ed25519.pub"),
            sshd.path("authorized_keys"),
        )?;
        sshd.write_stand_ins()?;
        sshd.set_service_state("active")?;
        std::fs::write(sshd.path("journal"), "")?;
        for _ in 0..5 {
            sshd.port = free_port()?;
            sshd.write_config()?;
            if sshd.launch().await? {
                return Ok(sshd);
            }
        }
        Err(io::Error::other(format!(
            "sshd did not start; its log:\n{}",
            std::fs::read_to_string(sshd.path("sshd.log")).unwrap_or_default()
        )))
    }

    /// `127.0.0.1:PORT`, the host string to probe.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The scratch directory (a test may keep its own files here, such as pins).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An authorized ed25519 client key.
    pub fn client_key(&self) -> PathBuf {
        self.path("client_ed25519")
    }

    /// Creates an RSA client key, authorizes it, and returns its path.
    pub fn rsa_client_key(&self) -> io::Result<PathBuf> {
        let key = self.path("client_rsa");
        keygen(&key, "rsa")?;
        let public = std::fs::read_to_string(self.path("client_rsa.pub"))?;
        let mut authorized = OpenOptions::new()
            .append(true)
            .open(self.path("authorized_keys"))?;
        authorized.write_all(public.as_bytes())?;
        Ok(key)
    }

    /// Creates a valid ed25519 key the server does not authorize, and returns its path.
    pub fn stranger_key(&self) -> io::Result<PathBuf> {
        let key = self.path("stranger_ed25519");
        keygen(&key, "ed25519")?;
        Ok(key)
    }

    /// The user the sessions log in as (the current user).
    pub fn user(&self) -> String {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".to_string())
    }

    /// Writes a `known_hosts` file naming this server's current host key and returns its path.
    pub fn known_hosts(&self) -> io::Result<PathBuf> {
        let public = std::fs::read_to_string(self.path("host_ed25519.pub"))?;
        let mut words = public.split_whitespace();
        let (Some(kind), Some(key)) = (words.next(), words.next()) else {
            return Err(io::Error::other("host_ed25519.pub is malformed"));
        };
        let file = self.path("known_hosts");
        std::fs::write(
            &file,
            format!("# test server\n[127.0.0.1]:{} {kind} {key}\n", self.port),
        )?;
        Ok(file)
    }

    /// What the stand-in `systemctl is-active` answers (`active`, `inactive`, `failed`…).
    /// `not-found` also makes `systemctl restart` fail as for a unit that does not exist.
    pub fn set_service_state(&self, state: &str) -> io::Result<()> {
        std::fs::write(self.path("service_state"), format!("{state}\n"))
    }

    /// The service's journal, as the stand-in `journalctl` shows it.
    pub fn set_journal(&self, text: &str) -> io::Result<()> {
        std::fs::write(self.path("journal"), text)
    }

    /// Makes every stand-in `systemctl` call hang (it starts `sleep 300` and waits),
    /// or stops that.
    pub fn hang_commands(&self, hang: bool) -> io::Result<()> {
        if hang {
            std::fs::write(self.path("hang"), "")
        } else {
            match std::fs::remove_file(self.path("hang")) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
    }

    /// The pid of the `sleep` the last hanging command started, once it has.
    pub fn hung_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path("hung.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The stand-in commands run so far, one `systemctl ARGS` or `journalctl ARGS` a line.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Stops the server and ends its open sessions, as a host going down would.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let sessions = descendants(pid);
                let _ = child.kill().await;
                for session in sessions {
                    kill(session);
                }
            }
            let _ = child.wait().await;
        }
    }

    /// Freezes the server and its sessions (`SIGSTOP`), as a host that hangs
    /// without closing its connections would; `false` thaws them (`SIGCONT`).
    pub fn freeze(&self, frozen: bool) {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else {
            return;
        };
        let signal = if frozen { "-STOP" } else { "-CONT" };
        for process in std::iter::once(pid).chain(descendants(pid)) {
            let _ = Command::new("kill")
                .args([signal, &process.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Starts the server again on the same port, with the same keys.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.stop().await;
        if self.launch().await? {
            Ok(())
        } else {
            Err(io::Error::other("sshd did not restart"))
        }
    }

    /// Gives the server a new host key (a reinstalled host, or an impostor) and restarts it.
    pub async fn replace_host_key(&mut self) -> io::Result<()> {
        self.stop().await;
        std::fs::remove_file(self.path("host_ed25519"))?;
        std::fs::remove_file(self.path("host_ed25519.pub"))?;
        keygen(&self.path("host_ed25519"), "ed25519")?;
        self.restart().await
    }

    /// Starts `count` loopback TCP relays to this server and returns their host
    /// strings: `count` distinct hosts that all reach this one `sshd` (for round
    /// benchmarks). They stop when the server is dropped.
    pub async fn relays(&mut self, count: usize) -> io::Result<Vec<String>> {
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut hosts = Vec::with_capacity(count);
        for _ in 0..count {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            hosts.push(format!("127.0.0.1:{}", listener.local_addr()?.port()));
            self.relays.push(tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ = inbound.set_nodelay(true);
                            let _ = outbound.set_nodelay(true);
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            }));
        }
        Ok(hosts)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Spawns sshd and waits for its banner; `false` when it exited (port taken).
    async fn launch(&mut self) -> io::Result<bool> {
        let log = std::fs::File::create(self.path("sshd.log"))?;
        let child = tokio::process::Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(self.path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && child.try_wait()?.is_some()
            {
                self.child = None;
                return Ok(false);
            }
            if greets(self.port).await {
                return Ok(true);
            }
            // Poll the port again shortly: the condition waited for is the banner.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stop().await;
        Err(io::Error::other(format!(
            "sshd did not greet within {READY_TIMEOUT:?}; its log:\n{}",
            std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
        )))
    }

    /// The config. `SetEnv` puts the stand-ins first on `PATH`, and sets `SHLVL=1`
    /// because bash sources `~/.bashrc` for commands run over SSH unless `SHLVL`
    /// is already set; a slow `.bashrc` on the test machine (pyenv init took
    /// 0.5 s a command) would otherwise be measured instead of the probe.
    fn write_config(&self) -> io::Result<()> {
        let d = self.dir.display();
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {d}/host_ed25519\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             AllowUsers {user}\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PermitRootLogin prohibit-password\n\
             SetEnv PATH={d}/bin:/usr/bin:/bin SHLVL=1\n\
             MaxStartups 500\n\
             MaxSessions 50\n\
             LogLevel INFO\n",
            port = self.port,
            user = self.user(),
        );
        std::fs::write(self.path("sshd_config"), config)
    }

    fn write_stand_ins(&self) -> io::Result<()> {
        let d = self.dir.display();
        let systemctl = format!(
            "#!/bin/sh\n\
             # Stand-in for systemctl: the test machine has no systemd.\n\
             echo \"systemctl $*\" >> {d}/calls\n\
             if [ -e {d}/hang ]; then\n\
             \x20 sleep 300 &\n\
             \x20 echo $! > {d}/hung.pid\n\
             \x20 wait\n\
             fi\n\
             case \"$1\" in\n\
             \x20 is-active) state=$(cat {d}/service_state); echo \"$state\"; [ \"$state\" = active ] || exit 3 ;;\n\
             \x20 restart)\n\
             \x20   if [ \"$(cat {d}/service_state)\" = not-found ]; then\n\
             \x20     echo \"Failed to restart $3: Unit $3 not found.\" >&2; exit 5\n\
             \x20   fi\n\
             \x20   echo active > {d}/service_state ;;\n\
             \x20 *) echo \"stand-in systemctl: unsupported: $*\" >&2; exit 1 ;;\n\
             esac\n"
        );
        let journalctl = format!(
            "#!/bin/sh\n\
             # Stand-in for journalctl: shows the last -n lines of the test's journal.\n\
             echo \"journalctl $*\" >> {d}/calls\n\
             n=10\n\
             while [ $# -gt 0 ]; do\n\
             \x20 case \"$1\" in -n) n=$2; shift 2 ;; *) shift ;; esac\n\
             done\n\
             tail -n \"$n\" {d}/journal\n"
        );
        for (name, text) in [("systemctl", systemctl), ("journalctl", journalctl)] {
            let file = self.path(&format!("bin/{name}"));
            std::fs::write(&file, text)?;
            let status = Command::new("chmod").arg("755").arg(&file).status()?;
            if !status.success() {
                return Err(io::Error::other(format!("chmod {} failed", file.display())));
            }
        }
        Ok(())
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        for relay in &self.relays {
            relay.abort();
        }
        if let Some(child) = self.child.as_mut()
            && let Some(pid) = child.id()
        {
            for session in descendants(pid) {
                kill(session);
            }
            let _ = child.start_kill();
        }
        if let Some(pid) = self.hung_pid() {
            kill(pid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a live process with `pid` exists (a zombie counts as gone).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn keygen(path: &Path, kind: &str) -> io::Result<()> {
    let mut command = Command::new("ssh-keygen");
    command
        .args(["-q", "-t", kind, "-N", "", "-C", "scrum-ssh-test", "-f"])
        .arg(path);
    if kind == "rsa" {
        command.args(["-b", "2048"]);
    }
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ssh-keygen -t {kind} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

fn free_port() -> io::Result<u16> {
    Ok(StdListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Whether something on `port` answers with an SSH banner.
async fn greets(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        return false;
    };
    let mut banner = [0u8; 4];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut banner)).await,
        Ok(Ok(_)) if &banner == b"SSH-"
    )
}

/// Every process below `pid` (its children, theirs, …), read from `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(parent) = parent {
                parents.push((child, parent));
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let current = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == current)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Sends `SIGKILL` to `pid`, one this harness started (or a descendant of one).
fn kill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}
