//! Like-for-like comparison of SRTP implementations for Rust (holdless issue 11).
//!
//! For each candidate and suite (AES_CM_128_HMAC_SHA1_80 and _32), on a 172-byte RTP
//! packet (12-byte header + 160 bytes of G.711, one SSRC, sequence numbers incrementing):
//! ns per protect and ns per unprotect (replay window 128 on the receiving side), as the
//! median of several timed rounds after a warm-up round. Then interop (every candidate's
//! output unprotected by every candidate), libsrtp's known answer, and a tamper/replay
//! sanity check.
//!
//! Every operation has the same shape as holdless's use: the packet comes in as a byte
//! slice and the result lands in a caller-owned `Vec<u8>` (one 172/182-byte copy for every
//! candidate: libsrtp works in place on that buffer, the Rust crates return a freshly
//! allocated `Bytes`/`BytesMut` that is copied into it, as `media/srtp.rs` does).

use std::hint::black_box;
use std::time::Instant;

const KEY_LEN: usize = 16;
const SALT_LEN: usize = 14;
const REPLAY_WINDOW: usize = 128;
const SSRC: u32 = 0x1234_5678;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    Sha1_80,
    Sha1_32,
}

impl Suite {
    fn name(self) -> &'static str {
        match self {
            Suite::Sha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::Sha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }
    fn tag_len(self) -> usize {
        match self {
            Suite::Sha1_80 => 10,
            Suite::Sha1_32 => 4,
        }
    }
}

/// One SRTP context (one direction of one leg).
trait Candidate: Sized {
    const NAME: &'static str;
    /// A context for `suite`; `replay` turns on the 128-packet replay window (receiving side).
    fn new(suite: Suite, key: &[u8], salt: &[u8], replay: bool) -> Result<Self, String>;
    /// RTP `plain` → SRTP in `out`.
    fn protect(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), String>;
    /// SRTP `wire` → RTP in `out`.
    fn unprotect(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<(), String>;
}

// ---------------------------------------------------------------------------------------
// 1. rtc-srtp (sans-IO, webrtc-rs "rtc" stack): what holdless uses today.

struct RtcSrtp(rtc_srtp::context::Context);

impl Candidate for RtcSrtp {
    const NAME: &'static str = "rtc-srtp 0.21";
    fn new(suite: Suite, key: &[u8], salt: &[u8], replay: bool) -> Result<Self, String> {
        use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
        use rtc_srtp::protection_profile::ProtectionProfile as P;
        let profile = match suite {
            Suite::Sha1_80 => P::Aes128CmHmacSha1_80,
            Suite::Sha1_32 => P::Aes128CmHmacSha1_32,
        };
        let provider = rtc_srtp::crypto::default_provider().map_err(|e| e.to_string())?;
        let (rtp, rtcp) = if replay {
            (
                Some(srtp_replay_protection(REPLAY_WINDOW)),
                Some(srtcp_replay_protection(REPLAY_WINDOW)),
            )
        } else {
            (None, None)
        };
        rtc_srtp::context::Context::new(key, salt, profile, rtp, rtcp, provider.crypto())
            .map(RtcSrtp)
            .map_err(|e| e.to_string())
    }
    fn protect(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let b = self.0.encrypt_rtp(plain).map_err(|e| e.to_string())?;
        out.clear();
        out.extend_from_slice(&b);
        Ok(())
    }
    fn unprotect(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let b = self.0.decrypt_rtp(wire).map_err(|e| e.to_string())?;
        out.clear();
        out.extend_from_slice(&b);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// 2. webrtc-srtp (the async webrtc-rs crate; its Context itself is synchronous).

struct WebrtcSrtp(webrtc_srtp::context::Context);

impl Candidate for WebrtcSrtp {
    const NAME: &'static str = if cfg!(feature = "webrtc-openssl") {
        "webrtc-srtp 0.17 (openssl)"
    } else {
        "webrtc-srtp 0.17"
    };
    fn new(suite: Suite, key: &[u8], salt: &[u8], replay: bool) -> Result<Self, String> {
        use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
        use webrtc_srtp::protection_profile::ProtectionProfile as P;
        let profile = match suite {
            Suite::Sha1_80 => P::Aes128CmHmacSha1_80,
            Suite::Sha1_32 => P::Aes128CmHmacSha1_32,
        };
        let (rtp, rtcp) = if replay {
            (
                Some(srtp_replay_protection(REPLAY_WINDOW)),
                Some(srtcp_replay_protection(REPLAY_WINDOW)),
            )
        } else {
            (None, None)
        };
        webrtc_srtp::context::Context::new(key, salt, profile, rtp, rtcp)
            .map(WebrtcSrtp)
            .map_err(|e| e.to_string())
    }
    fn protect(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let b = self.0.encrypt_rtp(plain).map_err(|e| e.to_string())?;
        out.clear();
        out.extend_from_slice(&b);
        Ok(())
    }
    fn unprotect(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let b = self.0.decrypt_rtp(wire).map_err(|e| e.to_string())?;
        out.clear();
        out.extend_from_slice(&b);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// 3. libsrtp2 through the `srtp` crate (srtp2-sys bindings), in place.

struct LibSrtp(srtp::Session);

impl Candidate for LibSrtp {
    const NAME: &'static str = if !cfg!(feature = "bundled-libsrtp") {
        "libsrtp (srtp 0.7, system lib)"
    } else if cfg!(feature = "libsrtp-openssl") {
        "libsrtp (srtp 0.7, bundled, OpenSSL)"
    } else {
        "libsrtp (srtp 0.7, bundled, own crypto)"
    };
    fn new(suite: Suite, key: &[u8], salt: &[u8], replay: bool) -> Result<Self, String> {
        use srtp::{CryptoPolicy, Session, StreamPolicy};
        let mut master = key.to_vec();
        master.extend_from_slice(salt);
        let rtp = match suite {
            Suite::Sha1_80 => CryptoPolicy::aes_cm_128_hmac_sha1_80(),
            Suite::Sha1_32 => CryptoPolicy::aes_cm_128_hmac_sha1_32(),
        };
        let policy = StreamPolicy {
            rtp,
            // RFC 4568 §6.2.1: SRTCP keeps the 80-bit tag with the _32 suite.
            rtcp: CryptoPolicy::aes_cm_128_hmac_sha1_80(),
            key: &master,
            // libsrtp always keeps a replay window; 128 is its default and our setting.
            window_size: REPLAY_WINDOW as u64,
            allow_repeat_tx: false,
            encrypt_extension_headers: &[],
        };
        let s = if replay {
            Session::with_inbound_template(policy)
        } else {
            Session::with_outbound_template(policy)
        };
        s.map(LibSrtp).map_err(|e| format!("{e:?}"))
    }
    fn protect(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        out.clear();
        out.extend_from_slice(plain);
        self.0.protect(out).map_err(|e| format!("{e:?}"))
    }
    fn unprotect(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        out.clear();
        out.extend_from_slice(wire);
        self.0.unprotect(out).map_err(|e| format!("{e:?}"))
    }
}

// ---------------------------------------------------------------------------------------
// Packets.

const BENCH_KEY: [u8; KEY_LEN] = [
    0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8,
    0x09,
];
const BENCH_SALT: [u8; SALT_LEN] = [
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
];

/// A 172-byte G.711 RTP packet: 12-byte header (PT 0) + 160 bytes of payload.
fn rtp_packet(seq: u16, payload_byte: u8) -> Vec<u8> {
    let mut p = Vec::with_capacity(172 + 16);
    p.extend_from_slice(&[0x80, 0x00]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq).wrapping_mul(160)).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend(std::iter::repeat(payload_byte).take(160));
    p
}

/// Sets the sequence number and timestamp of an RTP packet in place.
fn set_seq(p: &mut [u8], seq: u16) {
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq).wrapping_mul(160)).to_be_bytes());
}

// ---------------------------------------------------------------------------------------
// Timing.

struct Params {
    packets: usize,
    rounds: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Timing {
    protect_med: f64,
    protect_min: f64,
    unprotect_med: f64,
    unprotect_min: f64,
}

/// One candidate's timed rounds for one suite: each call runs one round (a fresh context
/// per direction, its setup not timed) and returns (protect ns/op, unprotect ns/op).
type Rounds = Box<dyn FnMut() -> (f64, f64)>;

fn rounds<C: Candidate + 'static>(suite: Suite, packets: usize) -> Rounds {
    let mut plain = rtp_packet(0, 0xd5);
    let mut out = Vec::with_capacity(256);

    // The SRTP stream every unprotect round replays, protected once by the candidate itself
    // (interop with the others is checked separately). The sequence starts at 0 and wraps
    // past 65535 when `packets` is larger, so the rollover counter is exercised too.
    let wire: Vec<Vec<u8>> = {
        let mut tx = C::new(suite, &BENCH_KEY, &BENCH_SALT, false).unwrap();
        (0..packets)
            .map(|i| {
                set_seq(&mut plain, i as u16);
                tx.protect(&plain, &mut out).unwrap();
                out.clone()
            })
            .collect()
    };

    Box::new(move || {
        let mut tx = C::new(suite, &BENCH_KEY, &BENCH_SALT, false).unwrap();
        let t = Instant::now();
        for i in 0..packets {
            set_seq(&mut plain, i as u16);
            tx.protect(black_box(&plain), &mut out).unwrap();
            black_box(&out);
        }
        let prot = t.elapsed().as_nanos() as f64 / packets as f64;
        drop(tx);

        let mut rx = C::new(suite, &BENCH_KEY, &BENCH_SALT, true).unwrap();
        let t = Instant::now();
        for w in &wire {
            rx.unprotect(black_box(w), &mut out).unwrap();
            black_box(&out);
        }
        let unprot = t.elapsed().as_nanos() as f64 / packets as f64;
        (prot, unprot)
    })
}

/// ns/op for every candidate on `suite`: one warm-up round each, then `p.rounds` rounds,
/// the candidates taking turns round by round so that a change in machine load falls on
/// all of them alike.
fn time_all(suite: Suite, p: &Params) -> Vec<Timing> {
    let mut cands: Vec<Rounds> = vec![
        rounds::<RtcSrtp>(suite, p.packets),
        rounds::<WebrtcSrtp>(suite, p.packets),
        rounds::<LibSrtp>(suite, p.packets),
    ];
    let mut prot = vec![Vec::new(); cands.len()];
    let mut unprot = vec![Vec::new(); cands.len()];
    for round in 0..=p.rounds {
        for (i, c) in cands.iter_mut().enumerate() {
            let (a, b) = c();
            if round > 0 {
                prot[i].push(a);
                unprot[i].push(b);
            }
        }
    }
    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    prot.into_iter()
        .zip(unprot)
        .map(|(a, b)| Timing {
            protect_min: min(&a),
            unprotect_min: min(&b),
            protect_med: median(a),
            unprotect_med: median(b),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Checks.

/// `P` protects a stream that `U` unprotects: 3000 packets from seq 64000 (crossing the
/// sequence wrap), payload varying per packet; every packet must come back identical.
fn interop<P: Candidate, U: Candidate>(suite: Suite) -> Result<(), String> {
    let mut tx = P::new(suite, &BENCH_KEY, &BENCH_SALT, false)?;
    let mut rx = U::new(suite, &BENCH_KEY, &BENCH_SALT, true)?;
    let mut wire = Vec::new();
    let mut back = Vec::new();
    for i in 0..3000u32 {
        let seq = (64_000 + i) as u16;
        let plain = rtp_packet(seq, i as u8);
        tx.protect(&plain, &mut wire)?;
        if wire.len() != plain.len() + suite.tag_len() {
            return Err(format!("seq {seq}: protected length {}", wire.len()));
        }
        rx.unprotect(&wire, &mut back)
            .map_err(|e| format!("seq {seq}: {e}"))?;
        if back != plain {
            return Err(format!("seq {seq}: plaintext differs"));
        }
    }
    Ok(())
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// libsrtp's known answer (test/srtp_driver.c, srtp_validate): AES_CM_128_HMAC_SHA1_80.
/// For _32 the expected tag is the same HMAC truncated to 4 bytes (derived, not in libsrtp).
fn known_answer<C: Candidate>(suite: Suite) -> Result<(), String> {
    let key = unhex("e1f97a0d3e018be0d64fa32c06de4139");
    let salt = unhex("0ec675ad498afeebb6960b3aabe6");
    let header = unhex("800f1234decafbadcafebabe");
    let mut plain = header.clone();
    plain.extend_from_slice(&[0xab; 16]);
    let mut expected = header.clone();
    let body = unhex("4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
    expected.extend_from_slice(&body[..16 + suite.tag_len()]);

    let mut tx = C::new(suite, &key, &salt, false)?;
    let mut wire = Vec::new();
    tx.protect(&plain, &mut wire)?;
    if wire != expected {
        return Err(format!("protect gave {:02x?}", &wire[12..]));
    }
    let mut rx = C::new(suite, &key, &salt, true)?;
    let mut back = Vec::new();
    rx.unprotect(&expected, &mut back)
        .map_err(|e| format!("unprotect: {e}"))?;
    if back != plain {
        return Err("unprotect gave another plaintext".into());
    }
    Ok(())
}

/// A flipped payload bit and a replayed packet are refused; an old-but-in-window packet
/// (out of order) is accepted.
fn sanity<C: Candidate>(suite: Suite) -> Result<(), String> {
    let mut tx = C::new(suite, &BENCH_KEY, &BENCH_SALT, false)?;
    let mut rx = C::new(suite, &BENCH_KEY, &BENCH_SALT, true)?;
    let mut out = Vec::new();
    let wire: Vec<Vec<u8>> = (0..200u16)
        .map(|s| {
            tx.protect(&rtp_packet(s, 7), &mut out).unwrap();
            out.clone()
        })
        .collect();
    let mut bad = wire[0].clone();
    bad[20] ^= 1;
    if rx.unprotect(&bad, &mut out).is_ok() {
        return Err("tampered packet accepted".into());
    }
    for w in &wire[..150] {
        rx.unprotect(w, &mut out).map_err(|e| format!("in order: {e}"))?;
    }
    if rx.unprotect(&wire[149], &mut out).is_ok() {
        return Err("replay accepted".into());
    }
    rx.unprotect(&wire[199], &mut out).map_err(|e| format!("jump: {e}"))?;
    rx.unprotect(&wire[150], &mut out)
        .map_err(|e| format!("late, within window: {e}"))?;
    if rx.unprotect(&wire[40], &mut out).is_ok() {
        return Err("packet 159 behind the newest (outside the window) accepted".into());
    }
    Ok(())
}

fn ok(r: Result<(), String>) -> String {
    match r {
        Ok(()) => "OK".into(),
        Err(e) => format!("FAIL ({e})"),
    }
}

// ---------------------------------------------------------------------------------------

macro_rules! for_each_candidate {
    ($m:ident $(, $arg:expr)*) => {
        [
            $m::<RtcSrtp>($($arg),*),
            $m::<WebrtcSrtp>($($arg),*),
            $m::<LibSrtp>($($arg),*),
        ]
    };
}

fn names() -> [&'static str; 3] {
    [RtcSrtp::NAME, WebrtcSrtp::NAME, LibSrtp::NAME]
}

fn interop_row<P: Candidate>(suite: Suite) -> [String; 3] {
    [
        ok(interop::<P, RtcSrtp>(suite)),
        ok(interop::<P, WebrtcSrtp>(suite)),
        ok(interop::<P, LibSrtp>(suite)),
    ]
}

fn main() {
    let mut p = Params {
        packets: 100_000,
        rounds: 15,
    };
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--packets" => p.packets = w[1].parse().expect("--packets N"),
            "--rounds" => p.rounds = w[1].parse().expect("--rounds N"),
            _ => {}
        }
    }
    let suites = [Suite::Sha1_80, Suite::Sha1_32];
    let names = names();
    // SAFETY: libsrtp returns a static NUL-terminated string.
    let libsrtp_version = unsafe {
        std::ffi::CStr::from_ptr(srtp::sys::srtp_get_version_string())
            .to_string_lossy()
            .into_owned()
    };
    println!("libsrtp linked: {libsrtp_version}");

    println!(
        "SRTP protect/unprotect, 172-byte RTP (12 + 160 G.711), one SSRC, seq incrementing; \
         {} packets per round, median (min) of {} rounds after 1 warm-up round, candidates interleaved round by round",
        p.packets, p.rounds
    );
    println!();
    println!("| candidate | suite | protect ns/op | unprotect ns/op (replay 128) |");
    println!("|---|---|---:|---:|");
    for suite in suites {
        let t = time_all(suite, &p);
        for (name, t) in names.iter().zip(t) {
            println!(
                "| {name} | {} | {:.0} ({:.0}) | {:.0} ({:.0}) |",
                suite.name(),
                t.protect_med,
                t.protect_min,
                t.unprotect_med,
                t.unprotect_min
            );
        }
    }

    for suite in suites {
        println!();
        println!("Interop, {} (row protects, column unprotects; 3000 packets across the sequence wrap):", suite.name());
        println!();
        println!("| protect \\ unprotect | {} | {} | {} |", names[0], names[1], names[2]);
        println!("|---|---|---|---|");
        let rows = [
            interop_row::<RtcSrtp>(suite),
            interop_row::<WebrtcSrtp>(suite),
            interop_row::<LibSrtp>(suite),
        ];
        for (name, row) in names.iter().zip(rows) {
            println!("| {name} | {} | {} | {} |", row[0], row[1], row[2]);
        }
    }

    println!();
    println!("Known answer (libsrtp srtp_validate; _32 = same vector, tag truncated to 4 bytes) and tamper/replay/window check:");
    println!();
    println!("| candidate | KAT _80 | KAT _32 | tamper/replay/window _80 | _32 |");
    println!("|---|---|---|---|---|");
    let k80 = for_each_candidate!(known_answer, Suite::Sha1_80);
    let k32 = for_each_candidate!(known_answer, Suite::Sha1_32);
    let s80 = for_each_candidate!(sanity, Suite::Sha1_80);
    let s32 = for_each_candidate!(sanity, Suite::Sha1_32);
    for (i, name) in names.iter().enumerate() {
        println!(
            "| {name} | {} | {} | {} | {} |",
            ok(k80[i].clone()),
            ok(k32[i].clone()),
            ok(s80[i].clone()),
            ok(s32[i].clone())
        );
    }
}
