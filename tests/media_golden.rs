//! SDP golden files (`tests/golden/sdp/*.txt`), in the manner of rtpengine's
//! `t/auto-daemon-tests.pl`: each file is a script of offers and answers through one call's
//! [`MediaController`], each followed by the SDP holdless must produce or the error it must
//! give.
//!
//! ```text
//! # comment lines; "#! address=::1" sets holdless's media address
//! --- offer caller        (or: answer callee, offer callee, answer caller)
//! v=0 ...                 the SDP the side sent (LF line ends become CRLF)
//! --- expect callee       the SDP holdless sends to the other side
//! v=0 ...
//! --- error NoCommonCodec (instead of expect: the MediaError variant)
//! ```
//!
//! Placeholders in expected SDP: `{CALLER_PORT}` / `{CALLEE_PORT}` (holdless's RTP port facing
//! that side), `{CALLER_RTCP}` / `{CALLEE_RTCP}` (the next port), and `{SID}` for holdless's
//! `o=` session id (checked to stay the same toward each side). `BLESS=1` rewrites the
//! expectations from the actual output, for review in the diff.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use holdless::acl::Egress;
use holdless::media::{MediaConfig, MediaControl, MediaController, MediaError, MediaId, Side};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sdp")
}

#[derive(Debug)]
enum Step {
    Offer(Side, String),
    Answer(Side, String),
    Expect(Side, String),
    Error(String),
}

fn side(word: &str, file: &Path) -> Side {
    match word {
        "caller" => Side::Caller,
        "callee" => Side::Callee,
        _ => panic!("{}: unknown side {word:?}", file.display()),
    }
}

struct Script {
    header: Vec<String>,
    options: HashMap<String, String>,
    steps: Vec<Step>,
}

fn parse(file: &Path) -> Script {
    let text = std::fs::read_to_string(file).unwrap();
    let mut header = Vec::new();
    let mut options = HashMap::new();
    let mut steps: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("--- ") {
            steps.push((rest.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = steps.last_mut() {
            body.push_str(line);
            body.push('\n');
        } else {
            if let Some(opt) = line.strip_prefix("#! ") {
                let (k, v) = opt.split_once('=').expect("#! key=value");
                options.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            header.push(line.to_owned());
        }
    }
    let steps = steps
        .into_iter()
        .map(|(head, body)| {
            let words: Vec<&str> = head.split_whitespace().collect();
            let body = body.trim_end().to_owned();
            match words.as_slice() {
                ["offer", s] => Step::Offer(side(s, file), body),
                ["answer", s] => Step::Answer(side(s, file), body),
                ["expect", s] => Step::Expect(side(s, file), body),
                ["error", e] => Step::Error((*e).to_owned()),
                _ => panic!("{}: bad step {head:?}", file.display()),
            }
        })
        .collect();
    Script {
        header,
        options,
        steps,
    }
}

fn variant(e: &MediaError) -> &'static str {
    match e {
        MediaError::PortsExhausted => "PortsExhausted",
        MediaError::MalformedSdp(_) => "MalformedSdp",
        MediaError::NoCommonCodec(_) => "NoCommonCodec",
        MediaError::NoPendingOffer => "NoPendingOffer",
        MediaError::UnknownSession => "UnknownSession",
        _ => "Other",
    }
}

/// Replaces holdless's `o=` session id by `{SID}`, checking it never changes per side.
fn mask_sid(sdp: &str, to: Side, sids: &mut HashMap<Side, String>) -> Result<String, String> {
    let mut out = String::new();
    for line in sdp.lines() {
        if let Some(rest) = line.strip_prefix("o=") {
            let f: Vec<&str> = rest.split(' ').collect();
            if f.len() != 6 {
                return Err(format!("bad o= line {line:?}"));
            }
            let known = sids.entry(to).or_insert_with(|| f[1].to_owned());
            if *known != f[1] {
                return Err(format!(
                    "o= session id toward {to:?} changed: {known} → {}",
                    f[1]
                ));
            }
            writeln!(out, "o={} {{SID}} {}", f[0], f[2..].join(" ")).unwrap();
        } else {
            writeln!(out, "{line}").unwrap();
        }
    }
    Ok(out.trim_end().to_owned())
}

fn placeholders(mc: &MediaController, id: MediaId) -> Vec<(String, String)> {
    let p = |s| mc.port(id, s).unwrap();
    vec![
        ("{CALLER_PORT}".into(), p(Side::Caller).to_string()),
        ("{CALLER_RTCP}".into(), (p(Side::Caller) + 1).to_string()),
        ("{CALLEE_PORT}".into(), p(Side::Callee).to_string()),
        ("{CALLEE_RTCP}".into(), (p(Side::Callee) + 1).to_string()),
    ]
}

/// Runs one script; returns the failures and, for BLESS, the script with actual output.
fn run(file: &Path) -> (Vec<String>, String) {
    let script = parse(file);
    let mut cfg = MediaConfig {
        // A range no input SDP uses, so blessing can put placeholders back unambiguously.
        port_min: 47000,
        port_max: 47099,
        ..MediaConfig::default()
    };
    if let Some(a) = script.options.get("address") {
        cfg.bind = a.parse().unwrap();
        cfg.advertised = cfg.bind;
    }
    let egress = Egress::new(vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()]);
    let mut mc = MediaController::with_seed(cfg, egress, 11);
    let now = Instant::now();
    let id = mc.create(now).unwrap();
    let subs = placeholders(&mc, id);
    let mut sids = HashMap::new();
    let mut failures = Vec::new();
    let mut blessed = script.header.join("\n") + "\n";
    let mut last: Option<(usize, Result<String, MediaError>)> = None;
    for (n, step) in script.steps.iter().enumerate() {
        let name = format!("{} step {}", file.display(), n + 1);
        match step {
            Step::Offer(s, body) | Step::Answer(s, body) => {
                let is_offer = matches!(step, Step::Offer(..));
                let wire = body.replace('\n', "\r\n") + "\r\n";
                let r = if is_offer {
                    mc.offer(now, id, *s, wire.as_bytes())
                } else {
                    mc.answer(now, id, *s, wire.as_bytes())
                };
                let word = if is_offer { "offer" } else { "answer" };
                let who = if *s == Side::Caller {
                    "caller"
                } else {
                    "callee"
                };
                write!(blessed, "--- {word} {who}\n{body}\n").unwrap();
                let to = s.other();
                let r = r.map(|b| String::from_utf8(b.to_vec()).unwrap().replace("\r\n", "\n"));
                let r = match r {
                    Ok(text) => mask_sid(&text, to, &mut sids).map_err(|e| {
                        failures.push(format!("{name}: {e}"));
                        MediaError::MalformedSdp(e)
                    }),
                    Err(e) => Err(e),
                };
                last = Some((n, r));
            }
            Step::Expect(to, want) => {
                let want_sub = subs.iter().fold(want.clone(), |w, (k, v)| w.replace(k, v));
                match last.take() {
                    Some((_, Ok(got))) => {
                        if got != want_sub {
                            failures.push(format!(
                                "{name}: SDP to {to:?} differs\n--- expected\n{want_sub}\n--- actual\n{got}\n"
                            ));
                        }
                        let back = subs.iter().fold(got, |g, (k, v)| replace_number(&g, v, k));
                        let who = if *to == Side::Caller {
                            "caller"
                        } else {
                            "callee"
                        };
                        write!(blessed, "--- expect {who}\n{back}\n").unwrap();
                    }
                    Some((_, Err(e))) => failures.push(format!("{name}: expected SDP, got {e}")),
                    None => failures.push(format!("{name}: expect without offer/answer")),
                }
            }
            Step::Error(want) => {
                match last.take() {
                    Some((_, Err(e))) if variant(&e) == want => {}
                    Some((_, r)) => failures.push(format!("{name}: expected {want}, got {r:?}")),
                    None => failures.push(format!("{name}: error without offer/answer")),
                }
                writeln!(blessed, "--- error {want}").unwrap();
            }
        }
    }
    if last.is_some() {
        failures.push(format!("{}: last step has no expect/error", file.display()));
    }
    mc.release(id);
    if mc.ports_in_use() != 0 {
        failures.push(format!("{}: ports leaked", file.display()));
    }
    (failures, blessed)
}

/// Replaces `num` where it stands as a whole number.
fn replace_number(text: &str, num: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(num) {
        let before = rest[..i].chars().last();
        let after = rest[i + num.len()..].chars().next();
        let whole = !before.is_some_and(|c| c.is_ascii_digit())
            && !after.is_some_and(|c| c.is_ascii_digit());
        out.push_str(&rest[..i]);
        out.push_str(if whole { with } else { num });
        rest = &rest[i + num.len()..];
    }
    out.push_str(rest);
    out
}

#[test]
fn sdp_golden_files() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "golden files missing: {files:?}");
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for f in &files {
        let (fails, blessed) = run(f);
        if bless {
            std::fs::write(f, blessed).unwrap();
        } else {
            failures.extend(fails);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
