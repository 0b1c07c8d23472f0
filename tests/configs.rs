//! The shipped configurations load: the README's first command and the bridge example
//! must work as written on a fresh machine.

use std::path::Path;

use holdless::config::Config;

fn load(rel: &str) -> Config {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    Config::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_example_configuration_is_valid_and_loopback_only() {
    let c = load("configs/holdless.toml");
    assert!(c
        .sip
        .udp
        .iter()
        .chain(&c.sip.tcp)
        .all(|a| a.ip().is_loopback()));
    assert!(c.http_listen.ip().is_loopback());
    assert!(c.egress_allow.iter().all(|n| n.addr().is_loopback()));
    assert!(c
        .call_targets
        .iter()
        .any(|t| t.id == "billing" && t.numbers == ["+15550001000"]));
    assert_eq!(
        c.calls.outbound_trunk.as_deref(),
        Some("sip:127.0.0.1:5080")
    );
}

#[test]
fn the_bridge_example_bridges_billing_to_the_contact_center() {
    let c = load("configs/examples/bridge.toml");
    let billing = c
        .call_targets
        .iter()
        .find(|t| t.id == "billing")
        .expect("billing");
    assert_eq!(
        billing.bridge_to.as_deref(),
        Some("sip:+15550009999@127.0.0.1:5090")
    );
    assert!(c.egress_allow.iter().all(|n| n.addr().is_loopback()));
}

/// `holdless check-config PATH`, the real binary.
fn check_config(path: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_holdless"))
        .arg("check-config")
        .arg(path)
        .output()
        .expect("run holdless")
}

#[test]
fn check_config_prints_every_error_with_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        r#"
[sip]
udp = ["127.0.0.1:5060", "not-an-address"]
[acl]
action = "maybe"
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
bogus = 1
[surprise]
x = 1
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["5550001000"]
"#,
    )
    .unwrap();
    let out = check_config(&file);
    assert!(!out.status.success(), "a bad configuration must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "acl.action",
        "egress.bogus",
        "surprise",
        "sip.udp[1]",
        "call_targets[0].numbers[0]",
    ] {
        let prefix = format!("{}: {key}: ", file.display());
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix)),
            "no line starting {prefix:?} in:\n{stderr}"
        );
    }
    assert_eq!(stderr.lines().count(), 5, "one line per error:\n{stderr}");
}

#[test]
fn check_config_accepts_the_example_configuration() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/holdless.toml");
    let out = check_config(&p);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
}
