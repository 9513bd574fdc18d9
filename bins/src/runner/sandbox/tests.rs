use super::*;

fn settings(mode: SandboxMode) -> SandboxSettings {
    SandboxSettings {
        mode,
        allow_hosts: vec!["api.anthropic.com".into()],
        pass_env: vec![],
        hidden: vec![],
        limits: Limits {
            memory_mb: 4096,
            processes: 256,
            tmp_mb: 64,
        },
    }
}

#[test]
fn modes_parse_by_name() {
    assert_eq!("BWRAP".parse::<SandboxMode>(), Ok(SandboxMode::Bwrap));
    assert_eq!("".parse::<SandboxMode>(), Ok(SandboxMode::Auto));
    assert!(
        "docker"
            .parse::<SandboxMode>()
            .unwrap_err()
            .contains("auto, srt, bwrap, none")
    );
}

#[tokio::test]
async fn a_token_cannot_be_passed_by_name() {
    let mut s = settings(SandboxMode::None);
    s.pass_env = vec!["GITHUB_TOKEN".into()];
    assert!(
        Sandbox::start(&s, Path::new("/nonexistent"))
            .await
            .unwrap_err()
            .contains("GITHUB_TOKEN")
    );
}

#[test]
fn arguments_are_quoted_for_the_shell() {
    assert_eq!(quote("it's $HOME"), "'it'\\''s $HOME'");
}

#[test]
fn the_api_host_is_the_base_urls() {
    assert_eq!(
        host_of("https://api.example.com/v1").as_deref(),
        Some("api.example.com")
    );
    assert_eq!(
        host_of("http://127.0.0.1:8080").as_deref(),
        Some("127.0.0.1:8080")
    );
    assert_eq!(
        host_of("http://u:p@Proxy.Local:9/x?y").as_deref(),
        Some("proxy.local:9")
    );
}

#[test]
fn a_workers_settings_hide_its_home_and_workspace_and_drop_blanks() {
    let s = SandboxSettings::new(
        SandboxMode::Bwrap,
        Path::new("/srv/ws"),
        &[" registry.npmjs.org ".into(), "".into()],
        &["NPM_TOKEN".into(), " ".into()],
        &[PathBuf::from("/srv/keys")],
        settings(SandboxMode::Bwrap).limits,
    );
    assert_eq!(
        s.allow_hosts.last().map(String::as_str),
        Some("registry.npmjs.org")
    );
    assert_eq!(s.allow_hosts.len(), 2, "{:?}", s.allow_hosts);
    assert_eq!(s.pass_env, ["NPM_TOKEN"]);
    for p in [
        "/root",
        "/home",
        "/etc/ai-scrum-master",
        "/srv/ws",
        "/srv/keys",
    ] {
        assert!(
            s.hidden.contains(&PathBuf::from(p)),
            "{p} hidden: {:?}",
            s.hidden
        );
    }
}
