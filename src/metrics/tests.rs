use super::*;
use std::time::Duration;

#[test]
fn a_gauge_is_the_sum_of_its_parts() {
    let c = Counters::default();
    let mut a = c.gauge_part(Gauge::CallsActive);
    let mut b = c.gauge_part(Gauge::CallsActive);
    a.set(3);
    b.set(4);
    b.set(5);
    assert!(
        c.render().contains("holdless_calls_active 8\n"),
        "{}",
        c.render()
    );
    drop(b);
    assert_eq!(
        c.gauge(Gauge::CallsActive),
        3,
        "a part gone takes its share"
    );
}

#[test]
fn counter_names_and_labels_are_those_the_scrapers_parse() {
    let c = Counters::default();
    let mut local = LocalCounters::new(c.clone());
    local.inc(Kind::Received, "INVITE");
    local.inc(Kind::Received, "INVITE");
    local.inc_fmt(Kind::Sent, format_args!("{}", 200));
    local.inc_fmt(Kind::Rejected, format_args!("{}_{}", "invalid", 400));
    c.inc(Kind::Dropped, "acl");
    c.inc(Kind::Absorbed, "request");
    c.inc(Kind::Attempts, "completed");
    let text = c.render();
    for line in [
        "# TYPE holdless_sip_received_total counter\n",
        "holdless_sip_received_total{what=\"INVITE\"} 2\n",
        "holdless_sip_sent_total{what=\"200\"} 1\n",
        "holdless_sip_rejected_total{reason=\"invalid_400\"} 1\n",
        "holdless_sip_dropped_total{reason=\"acl\"} 1\n",
        "holdless_sip_retransmissions_absorbed_total{what=\"request\"} 1\n",
        "holdless_callback_attempts_total{result=\"completed\"} 1\n",
        "# TYPE holdless_sip_transactions_active gauge\n",
        "holdless_sip_transactions_active 0\n",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert!(!text.contains("_total_total"), "{text}");
    assert!(
        !text.contains("holdless_calls_total"),
        "a counter is absent until counted: {text}"
    );
    assert_eq!(c.get(Kind::Received, "INVITE"), 2);
    assert_eq!(c.total(Kind::Received), 2);
}

#[test]
fn local_and_shared_counts_add_up_on_one_counter() {
    let c = Counters::default();
    let mut a = LocalCounters::new(c.clone());
    let mut b = LocalCounters::new(c.clone());
    a.inc(Kind::Received, "OPTIONS");
    b.add(Kind::Received, "OPTIONS", 2);
    c.inc(Kind::Received, "OPTIONS");
    a.inc(Kind::Received, "response");
    assert_eq!(c.get(Kind::Received, "OPTIONS"), 4);
    assert_eq!(c.total(Kind::Received), 5);
    assert_eq!(c.get(Kind::Received, "BYE"), 0);
}

#[test]
fn invented_labels_beyond_the_cap_count_as_other() {
    let c = Counters::default();
    let mut local = LocalCounters::new(c.clone());
    for i in 0..MAX_LABELS + 500 {
        local.inc_fmt(Kind::Received, format_args!("FROB{i}"));
    }
    local.inc(Kind::Received, "FROB0");
    assert_eq!(
        c.get(Kind::Received, "FROB0"),
        2,
        "labels under the cap stay"
    );
    assert_eq!(c.get(Kind::Received, OVERFLOW_LABEL), 500);
    assert_eq!(c.total(Kind::Received), (MAX_LABELS + 501) as u64);
    let lines = c
        .render()
        .lines()
        .filter(|l| l.starts_with("holdless_sip_received_total{"))
        .count();
    assert_eq!(lines, MAX_LABELS + 1);
}

#[test]
fn jitter_histogram_is_cumulative_with_sum_and_count() {
    let c = Counters::default();
    assert!(
        !c.render().contains(JITTER_HISTOGRAM),
        "absent until observed"
    );
    c.observe_jitter("caller", Duration::from_millis(4));
    c.observe_jitter("caller", Duration::from_millis(40));
    c.observe_jitter("caller", Duration::from_millis(900));
    let text = c.render();
    assert!(text.contains("# TYPE holdless_rtp_jitter_seconds histogram"));
    for (le, n) in [
        ("0.001", 0),
        ("0.005", 1),
        ("0.03", 1),
        ("0.05", 2),
        ("0.2", 2),
    ] {
        let line =
            format!("holdless_rtp_jitter_seconds_bucket{{from=\"caller\",le=\"{le}\"}} {n}\n");
        assert!(text.contains(&line), "{line} in {text}");
    }
    assert!(text.contains("holdless_rtp_jitter_seconds_bucket{from=\"caller\",le=\"+Inf\"} 3\n"));
    assert!(text.contains("holdless_rtp_jitter_seconds_count{from=\"caller\"} 3\n"));
    let sum: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("holdless_rtp_jitter_seconds_sum{from=\"caller\"} "))
        .and_then(|v| v.parse().ok())
        .expect("a _sum line");
    assert!((sum - 0.944).abs() < 1e-9, "{sum}");
}

#[test]
fn rtp_byte_and_loss_counters_are_labelled_by_sender() {
    let c = Counters::default();
    c.add(Kind::RtpBytes, "callee", 1720);
    c.add(Kind::RtpLost, "callee", 2);
    let text = c.render();
    assert!(
        text.contains("holdless_rtp_bytes_total{from=\"callee\"} 1720\n"),
        "{text}"
    );
    assert!(
        text.contains("holdless_rtp_lost_packets_total{from=\"callee\"} 2\n"),
        "{text}"
    );
}
