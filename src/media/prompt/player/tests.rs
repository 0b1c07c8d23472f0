//! Player tests on a fake clock: an `Instant` base plus exact durations.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::media::g711;
use crate::media::prompt::{names, PromptSet, Say};
use crate::media::rtp::parse_rtp;

const SSRC: u32 = 0x1234_5678;

fn at(base: Instant, ms: u64) -> Instant {
    base + Duration::from_millis(ms)
}

fn stream(seq: u16, ts: u32) -> StreamState {
    StreamState {
        ssrc: SSRC,
        next_seq: seq,
        next_timestamp: ts,
    }
}

/// A µ-law clip of `n` samples that never contain the silence byte, so padding shows.
fn clip(n: usize) -> (Clip, Vec<u8>) {
    let bytes: Vec<u8> = (0..n).map(|i| (i % 200) as u8).collect();
    let mut c = Clip::empty(Law::Pcmu);
    c.push_audio(Arc::from(bytes.clone()));
    (c, bytes)
}

/// Polls at every due time until the player stops sending or `max` frames went out.
fn drain_on_time(p: &mut Player, max: usize) -> Vec<RtpFrame> {
    let mut out = Vec::new();
    while let Some(t) = p.poll_timeout() {
        if out.len() == max {
            break;
        }
        let f = p.poll_transmit(t).expect("a frame at its due time");
        assert_eq!(f.due, t);
        assert!(p.poll_transmit(t).is_none(), "one frame a slot");
        out.push(f);
    }
    out
}

#[test]
fn sequence_numbers_and_timestamps_run_on_and_wrap() {
    let base = Instant::now();
    let mut p = Player::new(stream(65_530, u32::MAX - 479), Law::Pcmu, 0);
    p.set_comfort_silence(base, true);
    let frames = drain_on_time(&mut p, 12);
    let seqs: Vec<u16> = frames.iter().map(|f| f.seq).collect();
    assert_eq!(
        seqs,
        [65_530, 65_531, 65_532, 65_533, 65_534, 65_535, 0, 1, 2, 3, 4, 5]
    );
    for w in frames.windows(2) {
        assert_eq!(w[1].timestamp, w[0].timestamp.wrapping_add(160));
    }
    assert_eq!(frames[3].timestamp, 0, "wrapped at 2^32");
    assert!(frames.iter().all(|f| f.ssrc == SSRC && f.payload_type == 0));
    assert!(
        frames.iter().all(|f| f.payload == [0xFF; 160]),
        "µ-law silence"
    );
    assert_eq!(p.stream(), stream(6, 12 * 160 - 480));
}

#[test]
fn pacing_is_absolute_under_irregular_polls() {
    let base = Instant::now();
    let (c, _) = clip(160 * 2000);
    let mut p = Player::new(stream(0, 0), Law::Pcmu, 0);
    p.play(base, c);
    let mut sent = 0u64;
    let mut now = base;
    // A fixed pseudo-random sequence of poll intervals from 1 to 37 ms.
    let mut x: u32 = 12_345;
    while sent < 1000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        now += Duration::from_micros(1000 + u64::from(x >> 16) % 36_000);
        while let Some(f) = p.poll_transmit(now) {
            assert_eq!(f.due, base + PTIME * sent as u32, "frame {sent}");
            assert!(f.due <= now);
            assert_eq!(f.seq as u64, sent);
            assert_eq!(u64::from(f.timestamp), sent * 160);
            sent += 1;
        }
        // Never behind by a whole frame after a poll: caught up every time.
        assert!(p.poll_timeout().unwrap() > now);
    }
    assert_eq!(sent, 1000, "no skips: polls were never 3 frames late");
    assert_eq!(p.poll_timeout(), Some(base + Duration::from_secs(20)));
}

#[test]
fn a_late_poll_sends_at_most_three_frames_then_skips() {
    let base = Instant::now();
    let (c, bytes) = clip(160 * 50);
    let mut p = Player::new(stream(100, 1000), Law::Pcmu, 0);
    p.play(base, c);
    let first = p.poll_transmit(base).unwrap();
    assert_eq!((first.seq, first.timestamp), (100, 1000));
    // Frames 1..=10 are due by 200 ms: 7 skipped, 8, 9, 10 sent.
    let now = at(base, 200);
    let burst: Vec<RtpFrame> = std::iter::from_fn(|| p.poll_transmit(now)).collect();
    assert_eq!(burst.len(), 3);
    for (i, f) in burst.iter().enumerate() {
        let k = 8 + i as u64;
        assert_eq!(f.due, at(base, 20 * k));
        assert_eq!(f.seq, 101 + i as u16, "sequence numbers stay consecutive");
        assert_eq!(
            f.timestamp,
            1000 + 160 * k as u32,
            "timestamps skip with the clock"
        );
        assert_eq!(
            &f.payload[..],
            &bytes[160 * k as usize..160 * (k as usize + 1)]
        );
        assert!(!f.marker);
    }
    assert_eq!(p.poll_timeout(), Some(at(base, 220)));
    assert!(p.poll_transmit(at(base, 219)).is_none());
    // Two frames late is within the burst: both go, nothing skipped.
    let two: Vec<RtpFrame> = std::iter::from_fn(|| p.poll_transmit(at(base, 240))).collect();
    assert_eq!(
        two.iter().map(|f| f.due).collect::<Vec<_>>(),
        [at(base, 220), at(base, 240)]
    );
}

#[test]
fn a_late_poll_past_the_clip_end_finishes_it() {
    let base = Instant::now();
    let (c, _) = clip(160 * 5);
    let mut p = Player::new(stream(0, 0), Law::Pcmu, 0);
    p.play(base, c);
    assert!(
        p.poll_transmit(at(base, 1000)).is_none(),
        "all 5 frames long overdue"
    );
    assert_eq!(p.poll_event(), Some(PlayerEvent::Finished));
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn finishes_after_exactly_the_clip_frames_the_last_padded() {
    let base = Instant::now();
    let (c, bytes) = clip(1000);
    assert_eq!(c.frames(FRAME_SAMPLES), 7);
    let mut p = Player::new(stream(7, 7), Law::Pcmu, 0);
    p.play(base, c);
    let mut frames = Vec::new();
    for k in 0..7u64 {
        assert_eq!(p.poll_event(), None, "not finished before frame {k}");
        assert_eq!(p.poll_timeout(), Some(at(base, 20 * k)));
        frames.push(p.poll_transmit(at(base, 20 * k)).unwrap());
    }
    assert_eq!(p.poll_event(), Some(PlayerEvent::Finished));
    assert_eq!(p.poll_event(), None);
    assert_eq!(p.poll_timeout(), None, "comfort silence off: nothing more");
    assert!(p.poll_transmit(at(base, 10_000)).is_none());
    let sent: Vec<u8> = frames.iter().flat_map(|f| f.payload).collect();
    assert_eq!(&sent[..1000], &bytes[..]);
    assert!(
        sent[1000..].iter().all(|&b| b == 0xFF),
        "padded with µ-law silence"
    );
    assert_eq!(
        frames.iter().map(|f| f.marker).collect::<Vec<_>>(),
        [true, false, false, false, false, false, false]
    );
}

#[test]
fn stop_mid_clip() {
    let base = Instant::now();
    let (c, _) = clip(160 * 10);
    let mut p = Player::new(stream(0, 0), Law::Pcmu, 0);
    p.play(base, c.clone());
    assert_eq!(drain_on_time(&mut p, 3).len(), 3);
    p.stop();
    assert_eq!(p.poll_event(), Some(PlayerEvent::Stopped));
    assert_eq!(p.poll_timeout(), None);
    assert!(!p.is_playing());
    p.stop();
    assert_eq!(p.poll_event(), None, "stopping when idle reports nothing");

    // With comfort silence on, silence follows at once on the same schedule, unmarked.
    let mut p = Player::new(stream(0, 0), Law::Pcma, 8);
    p.set_comfort_silence(base, true);
    p.play(at(base, 5), c);
    let f = drain_on_time(&mut p, 3);
    assert_eq!(f[0].due, at(base, 0), "the clip joins the running schedule");
    p.stop();
    assert_eq!(p.poll_event(), Some(PlayerEvent::Stopped));
    let g = p.poll_transmit(at(base, 60)).unwrap();
    assert_eq!((g.seq, g.timestamp, g.marker), (3, 480, false));
    assert_eq!(g.payload, [0xD5; 160], "A-law silence");
}

#[test]
fn play_replaces_the_clip_playing() {
    let base = Instant::now();
    let (a, _) = clip(160 * 10);
    let mut b = Clip::empty(Law::Pcmu);
    b.push_audio(Arc::from(vec![0x42u8; 320]));
    let mut p = Player::new(stream(0, 0), Law::Pcmu, 0);
    p.play(base, a);
    drain_on_time(&mut p, 2);
    p.play(at(base, 30), b);
    assert_eq!(p.poll_event(), Some(PlayerEvent::Stopped));
    let f = p.poll_transmit(at(base, 40)).unwrap();
    assert_eq!((f.seq, f.due, f.payload[0]), (2, at(base, 40), 0x42));
    assert!(!f.marker, "the stream never paused");
    p.poll_transmit(at(base, 60)).unwrap();
    assert_eq!(p.poll_event(), Some(PlayerEvent::Finished));
}

#[test]
fn an_empty_clip_finishes_at_once() {
    let base = Instant::now();
    let mut p = Player::new(stream(0, 0), Law::Pcmu, 0);
    p.play(base, Clip::empty(Law::Pcmu));
    assert_eq!(p.poll_event(), Some(PlayerEvent::Finished));
    assert_eq!(p.poll_timeout(), None);
    assert!(p.poll_transmit(base).is_none());
}

#[test]
fn marker_rules() {
    let base = Instant::now();
    let (c, _) = clip(320);
    let mut p = Player::new(stream(0, 0), Law::Pcmu, 0);
    // Idle → talk without comfort silence: marked.
    p.play(base, c.clone());
    let f = drain_on_time(&mut p, 10);
    assert_eq!(
        f.iter().map(|f| f.marker).collect::<Vec<_>>(),
        [true, false]
    );
    // Again after a second of not sending: marked, and the timestamp kept up with the clock.
    p.play(at(base, 1020), c.clone());
    let g = drain_on_time(&mut p, 10);
    assert!(g[0].marker && !g[1].marker);
    assert_eq!(g[0].seq, 2);
    assert_eq!(g[0].timestamp, 8160, "1020 ms after the first frame");
    // Comfort silence on: the stream runs on, so a clip starts unmarked.
    p.set_comfort_silence(at(base, 2000), true);
    let s = p.poll_transmit(at(base, 2000)).unwrap();
    assert!(s.marker, "first packet after not sending");
    p.play(at(base, 2010), c.clone());
    let h = p.poll_transmit(at(base, 2020)).unwrap();
    assert!(!h.marker);
    assert_ne!(h.payload, [0xFF; 160]);
    // An SSRC change marks the next packet; the same SSRC does not.
    let mut st = p.stream();
    p.set_stream(st);
    assert!(!p.poll_transmit(at(base, 2040)).unwrap().marker);
    st = p.stream();
    st.ssrc ^= 1;
    p.set_stream(st);
    let m = p.poll_transmit(at(base, 2060)).unwrap();
    assert!(m.marker);
    assert_eq!(m.ssrc, SSRC ^ 1);
    // Comfort silence off while idle stops sending.
    assert_eq!(p.poll_event(), Some(PlayerEvent::Finished));
    p.set_comfort_silence(at(base, 2070), false);
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn a_new_player_carries_the_stream_on() {
    let base = Instant::now();
    let (c, _) = clip(160 * 4);
    let mut a = Player::new(stream(65_534, 4_000_000_000), Law::Pcmu, 0);
    a.play(base, c.clone());
    let fa = drain_on_time(&mut a, 2);
    a.stop();
    let state = a.stream();
    assert_eq!(state, stream(0, 4_000_000_320));
    let mut b = Player::new(state, Law::Pcmu, 0);
    b.play(at(base, 40), c);
    let fb = drain_on_time(&mut b, 10);
    assert_eq!(fb.len(), 4);
    assert_eq!(fb[0].ssrc, fa[1].ssrc);
    assert_eq!(fb[0].seq, fa[1].seq.wrapping_add(1));
    assert_eq!(fb[0].timestamp, fa[1].timestamp + 160);
    assert_eq!(b.stream(), stream(4, 4_000_000_960));
}

#[test]
fn a_clip_in_the_other_law_is_transcoded() {
    let base = Instant::now();
    let (c, bytes) = clip(160);
    let mut p = Player::new(stream(0, 0), Law::Pcma, 8);
    p.play(base, c);
    let f = p.poll_transmit(base).unwrap();
    let want: Vec<u8> = bytes
        .iter()
        .map(|&b| g711::ULAW_TO_ALAW[usize::from(b)])
        .collect();
    assert_eq!(&f.payload[..], &want[..]);
    assert_eq!(f.payload_type, 8);
}

#[test]
fn frames_on_the_wire() {
    let base = Instant::now();
    let (c, bytes) = clip(160);
    let mut p = Player::new(stream(0xABCD, 0x0102_0304), Law::Pcmu, 0);
    p.play(base, c);
    let f = p.poll_transmit(base).unwrap();
    let wire = f.to_bytes();
    let h = parse_rtp(&wire).unwrap();
    assert_eq!(
        (h.pt, h.seq, h.timestamp, h.ssrc),
        (0, 0xABCD, 0x0102_0304, SSRC)
    );
    assert_eq!(wire[1] & 0x80, 0x80, "marker");
    assert_eq!(&wire[h.payload_start..h.payload_end], &bytes[..]);
    let mut small = [0u8; 100];
    assert_eq!(f.write(&mut small), None);
    let mut big = [0u8; 1500];
    assert_eq!(f.write(&mut big), Some(172));
    assert_eq!(&big[..172], &wire[..]);
    assert!(!format!("{f:?}").contains('['), "no audio in Debug");
}

#[test]
fn plays_a_sentence_from_the_real_prompt_set() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/prompts");
    let set = PromptSet::load(&dir).unwrap();
    let say = [
        Say::Prompt(names::WAIT_IS_ABOUT),
        Say::Number(325),
        Say::Prompt(names::MINUTES),
        Say::Pause(500),
        Say::Prompt(names::FOR),
        Say::Day {
            offset: 1,
            weekday: 0,
        },
        Say::Prompt(names::AT),
        Say::Time { hour: 9, minute: 5 },
        Say::Prompt(names::PRESS),
        Say::Digits("1".into()),
    ];
    let clip = set.render(&say, Law::Pcma);
    // What the frames must carry: each clip's A-law bytes in order, the pause as silence.
    let mut want = Vec::new();
    let parts = [
        "wait_is_about",
        "n_3",
        "hundred",
        "n_20",
        "n_5",
        "minutes",
        "",
        "for",
        "tomorrow",
        "at",
        "n_9",
        "oh",
        "n_5",
        "am",
        "press",
        "n_1",
    ];
    for name in parts {
        match set.get(name, Law::Pcma) {
            Some(a) => want.extend_from_slice(a),
            None => want.extend(std::iter::repeat_n(0xD5, 4000)),
        }
    }
    assert_eq!(clip.samples(), want.len());
    let frames_expected = want.len().div_ceil(160);
    want.resize(frames_expected * 160, 0xD5);

    let base = Instant::now();
    let mut p = Player::new(StreamState::random(), Law::Pcma, 8);
    p.play(base, clip);
    let frames = drain_on_time(&mut p, usize::MAX);
    assert_eq!(frames.len(), frames_expected);
    for w in frames.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(
            w[1].timestamp,
            w[0].timestamp.wrapping_add(160),
            "also across the pause"
        );
        assert_eq!(w[1].due - w[0].due, PTIME);
    }
    let sent: Vec<u8> = frames.iter().flat_map(|f| f.payload).collect();
    assert!(sent == want, "payloads differ from the prompt bytes");
    assert_eq!(p.poll_event(), Some(PlayerEvent::Finished));
    // A few seconds of speech: 20 ms a frame.
    let length = frames.last().unwrap().due - base + PTIME;
    assert!(
        length > Duration::from_secs(4) && length < Duration::from_secs(15),
        "{length:?}"
    );
}
