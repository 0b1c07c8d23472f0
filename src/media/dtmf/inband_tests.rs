//! Tests of the in-band detector on generated key tones (levels, twist, noise, durations,
//! gaps), all passed through G.711 µ-law, and talk-off on recorded speech, generated music and
//! the prompt set.

use super::*;
use crate::media::g711::{alaw_to_linear, linear_to_ulaw, ulaw_to_linear};
use std::f32::consts::PI;
use std::path::Path;

/// The row and column frequencies of a key.
fn freqs(key: char) -> (f32, f32) {
    for (r, row) in KEYS.iter().enumerate() {
        if let Some(c) = row.iter().position(|&k| k == key) {
            return (ROWS[r], COLS[c]);
        }
    }
    panic!("no key {key}")
}

fn samples(ms: u32) -> usize {
    ms as usize * 8
}

/// Amplitude of a sine at `dbm0`.
fn amplitude(dbm0: f32) -> f32 {
    DBM0_AMPLITUDE * 10f32.powf(dbm0 / 20.0)
}

/// One key tone: row at `row_dbm0`, column at `col_dbm0`, phases from `phase`.
fn tone(key: char, row_dbm0: f32, col_dbm0: f32, ms: u32, phase: f32) -> Vec<f32> {
    let (fr, fc) = freqs(key);
    let (ar, ac) = (amplitude(row_dbm0), amplitude(col_dbm0));
    (0..samples(ms))
        .map(|n| {
            let t = n as f32 / RATE;
            ar * (2.0 * PI * fr * t + phase).sin() + ac * (2.0 * PI * fc * t + 2.0 * phase).sin()
        })
        .collect()
}

/// Keys `keys`, each `on_ms` long at `dbm0` per tone, `off_ms` of silence after each.
fn sequence(keys: &str, dbm0: f32, on_ms: u32, off_ms: u32) -> Vec<f32> {
    let mut out = Vec::new();
    for (i, key) in keys.chars().enumerate() {
        out.extend(tone(key, dbm0, dbm0, on_ms, i as f32 * 0.7));
        out.extend(std::iter::repeat_n(0.0, samples(off_ms)));
    }
    out
}

/// Gaussian white noise at `dbm0` mean power (Box–Muller, seeded).
fn noise(len: usize, dbm0: f32, seed: u64) -> Vec<f32> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let sigma = amplitude(dbm0) / 2f32.sqrt();
    (0..len)
        .map(|_| {
            let u1 = rng.f32().max(1e-9);
            let u2 = rng.f32();
            sigma * (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
        })
        .collect()
}

fn mix(a: &mut [f32], b: &[f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Through a µ-law channel, as the caller decodes PCMU.
fn ulaw(signal: &[f32]) -> Vec<i16> {
    signal
        .iter()
        .map(|&x| ulaw_to_linear(linear_to_ulaw(x.clamp(-32768.0, 32767.0) as i16)))
        .collect()
}

/// Runs a detector over `pcm` in 20 ms packets; returns every event.
fn events(pcm: &[i16]) -> Vec<DtmfEvent> {
    let start = Instant::now();
    let mut detector = InbandDetector::new();
    let mut out = Vec::new();
    for (i, packet) in pcm.chunks(160).enumerate() {
        let now = start + Duration::from_millis(20 * i as u64);
        if let Some(e) = detector.on_samples(now, packet) {
            out.push(e);
        }
        assert_eq!(
            detector.next_event(),
            None,
            "a 20 ms packet confirms one key at most"
        );
    }
    out
}

fn keys(pcm: &[i16]) -> String {
    events(pcm).iter().map(|e| e.digit.as_char()).collect()
}

const ALL: &str = "1234567890*#ABCD";

#[test]
fn every_key_at_several_levels() {
    for dbm0 in [-3.0, -6.0, -20.0, -30.0, -36.0] {
        let signal = sequence(ALL, dbm0, 100, 50);
        assert_eq!(keys(&ulaw(&signal)), ALL, "{dbm0} dBm0");
    }
}

#[test]
fn fifty_ms_tones_with_fifty_ms_gaps_at_every_alignment() {
    let keys_in = "1234567890*#";
    for lead in (0..BLOCK).step_by(7) {
        let mut signal = vec![0.0; lead];
        signal.extend(sequence(keys_in, -20.0, 50, 50));
        assert_eq!(keys(&ulaw(&signal)), keys_in, "lead-in {lead} samples");
    }
}

#[test]
fn thirty_ms_tones_are_not_keys_at_any_alignment() {
    for lead in 0..BLOCK {
        let mut signal = vec![0.0; lead];
        signal.extend(sequence("159#", -10.0, 30, 60));
        assert_eq!(keys(&ulaw(&signal)), "", "lead-in {lead} samples");
    }
}

#[test]
fn a_long_press_is_one_key_and_a_repeat_after_a_pause_is_two() {
    assert_eq!(keys(&ulaw(&sequence("5", -10.0, 1500, 100))), "5");
    for lead in (0..BLOCK).step_by(17) {
        let mut signal = vec![0.0; lead];
        signal.extend(sequence("5577", -15.0, 60, 50));
        assert_eq!(keys(&ulaw(&signal)), "5577", "lead-in {lead} samples");
    }
}

#[test]
fn a_short_dropout_inside_a_press_is_bridged() {
    let mut signal = tone('8', -12.0, -12.0, 200, 0.0);
    signal.extend(vec![0.0; samples(10)]);
    signal.extend(tone('8', -12.0, -12.0, 200, 1.0));
    assert_eq!(keys(&ulaw(&signal)), "8");
}

#[test]
fn twist_within_limits_is_accepted_beyond_is_rejected() {
    let with_twist = |row: f32, col: f32| {
        let mut signal = Vec::new();
        for (i, key) in "3690".chars().enumerate() {
            signal.extend(tone(key, row, col, 100, i as f32));
            signal.extend(vec![0.0; samples(60)]);
        }
        keys(&ulaw(&signal))
    };
    // Row stronger up to 8 dB, column stronger up to 4 dB.
    assert_eq!(with_twist(-10.0, -16.0), "3690");
    assert_eq!(with_twist(-24.0, -31.0), "3690");
    assert_eq!(with_twist(-13.0, -10.0), "3690");
    assert_eq!(with_twist(-10.0, -21.0), "");
    assert_eq!(with_twist(-17.0, -10.0), "");
}

#[test]
fn frequencies_off_by_one_and_a_half_percent_are_accepted() {
    // Q.24: a deviation of up to 1.5 % must be accepted.
    for deviation in [-0.015f32, 0.015] {
        let mut signal = Vec::new();
        for key in "1379*0#D".chars() {
            let (fr, fc) = freqs(key);
            let (fr, fc) = (fr * (1.0 + deviation), fc * (1.0 - deviation));
            let a = amplitude(-20.0);
            signal.extend((0..samples(60)).map(|n| {
                let t = n as f32 / RATE;
                a * ((2.0 * PI * fr * t).sin() + (2.0 * PI * fc * t).sin())
            }));
            signal.extend(vec![0.0; samples(50)]);
        }
        assert_eq!(keys(&ulaw(&signal)), "1379*0#D", "{deviation}");
    }
}

#[test]
fn too_weak_tones_are_ignored() {
    assert_eq!(keys(&ulaw(&sequence(ALL, -48.0, 100, 50))), "");
    assert_eq!(keys(&ulaw(&sequence(ALL, -55.0, 100, 50))), "");
}

#[test]
fn keys_in_white_noise_at_15_db_snr() {
    let keys_in = "1234567890*#";
    for (seed, dbm0) in [(1, -8.0), (2, -20.0), (3, -28.0), (4, -14.0)] {
        let mut signal = sequence(keys_in, dbm0, 60, 50);
        // Two tones at `dbm0` each: +3 dB of signal power; noise 15 dB below that.
        let n = noise(signal.len(), dbm0 + 3.0 - 15.0, seed);
        mix(&mut signal, &n);
        assert_eq!(keys(&ulaw(&signal)), keys_in, "seed {seed}, {dbm0} dBm0");
    }
}

#[test]
fn noise_alone_is_not_a_key() {
    for (seed, dbm0) in [(7, -10.0), (8, -25.0), (9, -40.0)] {
        assert_eq!(
            keys(&ulaw(&noise(8000 * 10, dbm0, seed))),
            "",
            "{dbm0} dBm0"
        );
    }
}

#[test]
fn event_fields() {
    // 408 samples of silence (4 blocks), then the tone: blocks 4, 5 and 6 (samples
    // 408..714) are the first three tone blocks; the key is confirmed at sample 714.
    let mut signal = vec![0.0; 4 * BLOCK];
    signal.extend(tone('#', -10.0, -10.0, 100, 0.0));
    let pcm = ulaw(&signal);
    let start = Instant::now();
    let mut detector = InbandDetector::new();
    let mut found = Vec::new();
    for (i, packet) in pcm.chunks(160).enumerate() {
        let now = start + Duration::from_millis(20 * i as u64);
        found.extend(detector.on_samples(now, packet));
    }
    assert_eq!(
        found,
        vec![DtmfEvent {
            digit: Digit::Pound,
            at: start + Duration::from_micros(714 * 125),
            duration_ms: 38,
            source: DtmfSource::Inband,
        }]
    );
}

#[test]
fn one_big_chunk_confirms_every_key() {
    let pcm = ulaw(&sequence(ALL, -15.0, 70, 50));
    let start = Instant::now();
    let mut detector = InbandDetector::new();
    let mut found = String::new();
    let mut at = Vec::new();
    let mut next = detector.on_samples(start, &pcm);
    while let Some(e) = next {
        found.push(e.digit.as_char());
        at.push(e.at);
        next = detector.next_event();
    }
    assert_eq!(found, ALL);
    assert!(at.windows(2).all(|w| w[0] < w[1]));
}

/// A WAV file's samples as 8 kHz linear, or why it cannot be read that way.
fn read_wav_8k(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not RIFF/WAVE".into());
    }
    let mut format = None;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32_at(bytes, at + 4) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        match id {
            b"fmt " if body.len() >= 16 => {
                format = Some((
                    u16_at(body, 0),
                    u16_at(body, 2),
                    u32_at(body, 4),
                    u16_at(body, 14),
                ));
            }
            b"data" => {
                let (tag, channels, rate, bits) = format.ok_or("data before fmt")?;
                if channels != 1 || rate != 8000 {
                    return Err(format!("{channels} channel(s) at {rate} Hz"));
                }
                return match (tag, bits) {
                    (1, 16) => Ok(body
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect()),
                    (7, 8) => Ok(body.iter().map(|&u| ulaw_to_linear(u)).collect()),
                    (6, 8) => Ok(body.iter().map(|&a| alaw_to_linear(a)).collect()),
                    _ => Err(format!("format {tag} with {bits} bits")),
                };
            }
            _ => {}
        }
        at += 8 + len + (len & 1);
    }
    Err("no data chunk".into())
}

fn fixture(name: &str) -> Vec<i16> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read_wav_8k(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn speech_is_not_keys() {
    let speech = fixture("speech-8k.wav");
    assert!(speech.len() > 8000 * 20, "the fixture holds over 20 s");
    for gain_db in [-20.0f32, -10.0, 0.0, 6.0] {
        let gain = 10f32.powf(gain_db / 20.0);
        let signal: Vec<f32> = speech.iter().map(|&s| f32::from(s) * gain).collect();
        assert_eq!(keys(&ulaw(&signal)), "", "speech at {gain_db} dB");
    }
}

/// A note with five decaying harmonics (a plucked or struck string, roughly).
fn note(freq: f32, len: usize, level: f32) -> impl Iterator<Item = f32> {
    (0..len).map(move |n| {
        let t = n as f32 / RATE;
        let envelope = (-3.0 * t).exp() * (1.0 - (-200.0 * t).exp());
        let mut v = 0.0;
        for h in 1..=5u8 {
            let f = freq * f32::from(h);
            if f < 3800.0 {
                v += (2.0 * PI * f * t).sin() / f32::from(h);
            }
        }
        level * envelope * v
    })
}

/// Equal-tempered note frequency, MIDI numbering (69 = A4 = 440 Hz).
fn midi(n: u8) -> f32 {
    440.0 * 2f32.powf((f32::from(n) - 69.0) / 12.0)
}

#[test]
fn music_is_not_keys() {
    let level = amplitude(-12.0);
    let mut signal = Vec::new();
    // Chord progressions in several registers, including notes near the DTMF rows
    // (F5 698 Hz, G5 784 Hz, A5 880 Hz) and columns (D#6 1245 Hz, E6 1319 Hz).
    let chords: [&[u8]; 10] = [
        &[60, 64, 67],
        &[65, 69, 72],
        &[67, 71, 74],
        &[69, 72, 76],
        &[77, 81, 84, 88],
        &[79, 83, 86],
        &[77, 81, 88],
        &[81, 85, 88, 93],
        &[74, 77, 81, 86],
        &[72, 76, 79, 84, 87],
    ];
    for chord in chords {
        let len = samples(600);
        let mut bar = vec![0.0; len];
        for &n in chord {
            let voice: Vec<f32> = note(midi(n), len, level / chord.len() as f32).collect();
            mix(&mut bar, &voice);
        }
        signal.extend(bar);
    }
    // A melody of single notes across the DTMF band.
    for n in 72..100u8 {
        signal.extend(note(midi(n), samples(150), level));
    }
    // Sweeps over 200 Hz–3.4 kHz of one voice, then two voices a fifth apart, each with a
    // 2nd harmonic as instruments have. (Two *pure* sines gliding together do pass through
    // near-DTMF pairs — e.g. 794 + 1191 Hz, 3 % and 1.5 % off key 4 — and may be taken for
    // a key, as Q.24 allows for deviations under 3.5 %.)
    for fifth in [false, true] {
        let len = samples(6000);
        let mut phase = (0.0f32, 0.0f32);
        for n in 0..len {
            let f = 200.0 * (3400.0f32 / 200.0).powf(n as f32 / len as f32);
            phase.0 += 2.0 * PI * f / RATE;
            phase.1 += 2.0 * PI * f * 1.5 / RATE;
            let mut v = phase.0.sin() + 0.3 * (2.0 * phase.0).sin();
            if fifth {
                v += phase.1.sin() + 0.3 * (2.0 * phase.1).sin();
            }
            signal.push(level * 0.5 * v);
        }
    }
    assert_eq!(keys(&ulaw(&signal)), "");
}

#[test]
fn prompts_are_not_keys() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/prompts");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping prompt talk-off: {} does not exist", dir.display());
        return;
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .collect();
    paths.sort();
    if paths.is_empty() {
        eprintln!("skipping prompt talk-off: no .wav in {}", dir.display());
    }
    for path in paths {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match read_wav_8k(&bytes) {
            Ok(pcm) => assert_eq!(keys(&pcm), "", "{}", path.display()),
            Err(why) => eprintln!("skipping {}: {why}", path.display()),
        }
    }
}

#[test]
fn the_filter_bank_gives_each_filter_exactly_what_it_gives_alone() {
    let block: [f32; BLOCK] = std::array::from_fn(|i| ((i * 7919) % 4001) as f32 - 2000.0);
    let coefs: [f32; 8] =
        std::array::from_fn(|k| coefficient(if k < 4 { ROWS[k] } else { COLS[k - 4] }));
    let bank = goertzel_bank(&block, &coefs);
    for k in 0..8 {
        assert_eq!(
            bank[k].to_bits(),
            goertzel(&block, coefs[k]).to_bits(),
            "filter {k}"
        );
    }
}
