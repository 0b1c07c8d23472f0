//! The shipped configurations load: the README's first command and the bridge example
//! must work as written on a fresh machine.

use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use holdless::config::Config;
use ipnet::IpNet;

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

/// Contained in 127.0.0.0/8 or ::1/128: a wide net such as 127.0.0.0/1 does not pass.
fn loopback_only(n: &IpNet) -> bool {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .any(|l| l.parse::<IpNet>().unwrap().contains(n))
}

/// What the README's curl and SIPp examples rely on, as written.
#[test]
fn the_example_configuration_has_the_readme_demo() {
    let c = load("configs/holdless.toml");
    let demo = c
        .organizations
        .iter()
        .find(|o| o.id == "demo")
        .expect("organization demo");
    assert_eq!(demo.api_tokens, ["demo-token"]);
    assert!(!demo.api_allow.is_empty() && demo.api_allow.iter().all(loopback_only));

    let w = c
        .widgets
        .iter()
        .find(|w| w.id == "billing-widget")
        .expect("widget billing-widget");
    assert_eq!(
        (w.call_target.as_str(), w.organization.as_str()),
        ("billing", "demo")
    );
    assert!(w.enabled);

    let t = c
        .call_targets
        .iter()
        .find(|t| t.id == "billing")
        .expect("call target billing");
    assert_eq!(t.numbers, ["+15550001000"]);
    assert_eq!(t.organization.as_deref(), Some("demo"));
    assert_eq!(
        t.bridge_to, None,
        "billing offers callbacks, it does not bridge"
    );
    let cb = &t.callback;
    assert!(cb.enabled);
    assert_eq!(
        cb.contact_center.as_deref(),
        Some("sip:+15550009999@127.0.0.1:5090")
    );
    // Open around the clock: every half hour of a year, daylight-saving days included,
    // is inside an open period that never closes.
    let hours = &cb.hours;
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut at: DateTime<Utc> = start;
    while at < start + Duration::days(366) {
        assert_eq!(
            hours.open_until(at),
            Some(DateTime::<Utc>::MAX_UTC),
            "closed or closing at {at}"
        );
        at += Duration::minutes(30);
    }

    assert_eq!(
        c.calls.outbound_trunk.as_deref(),
        Some("sip:127.0.0.1:5080")
    );
    assert!(!c.egress_allow.is_empty());
    assert!(
        c.egress_allow.iter().all(loopback_only),
        "egress beyond loopback: {:?}",
        c.egress_allow
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

#[test]
fn check_config_names_a_broken_prompt_file_and_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/prompts");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "wav") {
            std::fs::copy(&p, prompts.join(p.file_name().unwrap())).unwrap();
        }
    }
    // 16 kHz instead of 8 kHz: the sample rate field of the fmt chunk (bytes 24..28).
    let bad = prompts.join("welcome.wav");
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes[24..28].copy_from_slice(&16000u32.to_le_bytes());
    std::fs::write(&bad, bytes).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/holdless.toml");
    let text = std::fs::read_to_string(example).unwrap().replace(
        "prompts = \"configs/prompts\"",
        &format!("prompts = {:?}", prompts.display().to_string()),
    );
    let file = dir.path().join("holdless.toml");
    std::fs::write(&file, text).unwrap();
    let out = check_config(&file);
    assert!(!out.status.success(), "a broken prompt must fail the check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("call_targets[0].prompts"), "{stderr}");
    assert!(stderr.contains("welcome.wav"), "{stderr}");
    assert!(stderr.contains("16000"), "{stderr}");
    std::fs::remove_file(prompts.join("oh.wav")).unwrap();
    std::fs::copy(shipped.join("welcome.wav"), &bad).unwrap();
    let out = check_config(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("oh.wav") && stderr.contains("missing"),
        "{stderr}"
    );
}
