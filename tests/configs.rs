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
