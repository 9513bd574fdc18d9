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

#[test]
fn a_token_cannot_be_passed_by_name() {
    let mut s = settings(SandboxMode::None);
    s.pass_env = vec!["GITHUB_TOKEN".into()];
    assert!(
        Sandbox::start(&s, Path::new("/nonexistent"))
            .unwrap_err()
            .contains("GITHUB_TOKEN")
    );
}

#[test]
fn arguments_are_quoted_for_the_shell() {
    assert_eq!(quote("it's $HOME"), "'it'\\''s $HOME'");
}
