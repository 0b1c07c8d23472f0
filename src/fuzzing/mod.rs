//! The bodies of the cargo-fuzz targets in `fuzz/` (issue 11, "Fuzzing"). Each takes the
//! fuzzer's bytes, drives one parser or core, and panics only when an invariant breaks; the
//! targets in `fuzz/fuzz_targets/` are one-line calls into these functions. Keeping the
//! bodies here lets `cargo test` run every one of them over the committed seeds in
//! `fuzz/seeds/` (see the tests below), so they keep compiling and keep passing without a
//! libFuzzer build. Not an API: hidden from the docs and free to change.

mod endpoint;
mod media;
#[cfg(test)]
mod tests;

pub use endpoint::endpoint;
pub use media::{rtp_relay, sdp, srtp};

use crate::sip::framer::{Frame, StreamFramer};
use crate::sip::parse::{self, Framing, MAX_MESSAGE_BYTES};
use crate::sip::{digest, name_addr, uri, uui, validate, via, Message, Name};

/// A fuzz body: the fuzzer's bytes in, a panic only when an invariant breaks.
pub type Body = fn(&[u8]);

/// Every fuzz target: its name (the `fuzz/fuzz_targets/` file and `fuzz/seeds/` folder)
/// and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("sip_parse", sip_parse),
    ("sip_framer", sip_framer),
    ("sip_uri", sip_uri),
    ("sdp", sdp),
    ("rtp_relay", rtp_relay),
    ("srtp", srtp),
    ("uui", uui),
    ("dtmf_info", dtmf_info),
    ("digest", digest),
    ("config", config),
    ("api_body", api_body),
    ("endpoint", endpoint),
];

/// The SIP parser on a datagram and on a stream frame, then every typed view the endpoint
/// takes of a request. Asserts that a well-formed message holdless prints parses again to
/// the same message.
pub fn sip_parse(data: &[u8]) {
    for framing in [Framing::Datagram, Framing::Stream] {
        let Ok(parsed) = parse::parse(data, framing) else {
            continue;
        };
        views(&parsed.msg);
        if parsed.msg.is_request() {
            let _ = validate::check_request(&parsed);
        }
        if parsed.defect.is_none() {
            let printed = parsed.msg.to_bytes();
            let again = parse::parse(&printed, Framing::Stream)
                .unwrap_or_else(|e| panic!("holdless printed a message it cannot read: {e}"));
            assert_eq!(again.defect, None, "printed message has a defect");
            assert_eq!(
                without_length(&again.msg),
                without_length(&parsed.msg),
                "printed message reads differently"
            );
        }
    }
}

/// The message minus its Content-Length headers, which printing rewrites from the body.
fn without_length(msg: &Message) -> Message {
    let mut m = msg.clone();
    m.headers.retain(|h| !Name::ContentLength.matches(&h.name));
    m
}

/// The typed views of a parsed message's headers (none may panic).
fn views(msg: &Message) {
    let _ = via::all(msg);
    let _ = validate::cseq(msg);
    let _ = validate::max_forwards(msg);
    if let Some(ruri) = msg.request_uri() {
        let _ = uri::parse(ruri);
        let _ = uri::dialled_number(ruri);
    }
    for name in [Name::From, Name::To, Name::Contact] {
        for v in msg.get_all(name) {
            name_addrs(v);
        }
    }
    for h in &msg.headers {
        if h.name.eq_ignore_ascii_case("user-to-user")
            || h.name.eq_ignore_ascii_case("x-user-to-user")
        {
            let _ = uui::decode(&h.value, 256);
        }
    }
    let _ = digest::challenges(msg);
}

/// The name-addr helpers on one value.
fn name_addrs(v: &str) {
    let _ = validate::name_addr(v);
    let _ = uri::parse(name_addr::uri(v));
    let _ = name_addr::tag(v);
    let bare = name_addr::without_tag(v);
    assert_eq!(
        name_addr::tag(&bare),
        None,
        "without_tag left a tag in {v:?}"
    );
    let _ = name_addr::with_tag(&bare, "fz1");
}

/// The TCP framer fed the bytes in pieces whose sizes come from the first bytes. Asserts
/// that the frames do not depend on how the stream was cut, that every frame is within
/// the message limit, and that what stays buffered is bounded.
pub fn sip_framer(data: &[u8]) {
    let (sizes, stream) = data.split_at(data.len().min(4));
    let whole = frames(stream, &[]);
    let cuts: Vec<usize> = sizes.iter().map(|&b| usize::from(b) + 1).collect();
    let pieces = frames(stream, &cuts);
    if let (Ok(a), Ok(b)) = (&whole, &pieces) {
        assert_eq!(a, b, "frames depend on how the stream was cut");
    }
}

/// Frames of `stream` pushed in pieces cycling through `cuts` (one piece when empty).
fn frames(stream: &[u8], cuts: &[usize]) -> Result<Vec<Frame>, ()> {
    let mut f = StreamFramer::new();
    let mut out = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts
            .get(i % cuts.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        i += 1;
        f.push(piece);
        loop {
            match f.next_frame() {
                Ok(Some(frame)) => {
                    if let Frame::Message(m) = &frame {
                        assert!(m.len() <= MAX_MESSAGE_BYTES, "frame over the limit");
                        let _ = parse::parse(m, Framing::Stream);
                    }
                    out.push(frame);
                }
                Ok(None) => break,
                Err(_) => return Err(()),
            }
        }
        assert!(
            f.buffered() <= MAX_MESSAGE_BYTES + piece.len(),
            "the framer holds {} bytes",
            f.buffered()
        );
    }
    Ok(out)
}

/// The URI, name-addr and Via parsers on one text.
pub fn sip_uri(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = uri::parse(&text);
    let _ = uri::percent_decode(&text);
    let _ = uri::dialled_number(&text);
    name_addrs(&text);
    let _ = via::Via::parse(&text);
    for v in via::split_list(&text) {
        if let Ok(mut parsed) = via::Via::parse(v) {
            let _ = parsed.branch();
            let _ = parsed.sent_by();
            parsed.set_param("received", Some("127.0.0.1".into()));
        }
    }
    let _ = validate::list(&text);
}

/// The User-to-User decoder; the first byte is the length limit. Asserts the limit holds.
pub fn uui(data: &[u8]) {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(max);
    let u = uui::decode(&String::from_utf8_lossy(rest), max);
    assert!(
        u.raw.len() <= max && u.value.len() <= max,
        "UUI over its limit"
    );
}

/// The DTMF INFO body: the text up to the first newline is the Content-Type.
pub fn dtmf_info(data: &[u8]) {
    let (ct, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(d) = crate::media::dtmf::info::parse_info(&String::from_utf8_lossy(ct), body) {
        let _ = d.into_event(std::time::Instant::now());
    }
}

/// The digest challenge parser, and an Authorization from every challenge it accepts.
pub fn digest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = digest::Challenge::parse(&text);
    let Ok(list) = digest::parse_list(&text) else {
        return;
    };
    let creds = digest::Credentials::new("alice", "secret");
    let request = digest::DigestRequest {
        method: "INVITE",
        uri: "sip:bob@127.0.0.1",
        body: b"",
    };
    let ok: Vec<_> = list.into_iter().flatten().collect();
    for c in &ok {
        let _ = digest::authorization(c, &creds, &request, "0a4f113b", 1);
    }
    let _ = digest::choose(&ok, &creds);
}

/// The configuration loader on TOML text.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::config::Config::parse(text);
    }
}

/// The API's JSON bodies: the object reader and every field reader the handlers use.
pub fn api_body(data: &[u8]) {
    use crate::api::body;
    if data.len() > body::MAX_BODY {
        return; // the handlers refuse a longer body before reading it
    }
    let Ok(m) = body::parse_object(data) else {
        return;
    };
    let _ = body::contact_number(&m);
    let _ = body::appointment_time(&m);
    let _ = body::user_data(&m);
    let _ = body::short_string(&m, "channel", body::MAX_CHANNEL);
    let _ = body::short_string(&m, "time_zone", body::MAX_CHANNEL);
}
