//! In-band DTMF: finds key tones in 8 kHz linear audio (G.711 decoded by the caller with
//! [`crate::media::g711`]) with the Goertzel algorithm, following ITU-T Q.24's acceptance
//! limits.
//!
//! The audio is cut into blocks of [`BLOCK`] samples (12.75 ms). Each block is tested for one
//! row and one column tone, and rejected unless it looks like a key and nothing else:
//! - each tone at least [`MIN_TONE_DBM0`];
//! - twist: the row (low group) tone at most 8 dB above the column tone, the column tone at
//!   most 4 dB above the row tone;
//! - the other rows (columns) at least 8 dB below the strongest row (column);
//! - the two tones hold at least 75 % of the block's energy (speech and music spread their
//!   energy; a block only partly covered by a tone fails too);
//! - the 2nd harmonic of each tone at least 12 dB below it (voiced speech is harmonic-rich);
//!   a row's harmonic is checked only when it is 150 Hz clear of the column tone.
//!
//! A key is reported once, when [`PRESENT_BLOCKS`] consecutive blocks (38 ms) agree on it —
//! tones of 48 ms or more are caught whatever their alignment to the blocks, 40–47 ms ones
//! only when well aligned, 38 ms and shorter never (Q.24 lets administrations reject tones
//! under 40 ms; a block half-covered by a tone fails the energy-share test). The same key is reported again only after [`ABSENT_BLOCKS`] blocks
//! without it (a 38 ms pause; short drop-outs inside one press are bridged), a different
//! key as soon as it is present.
//!
//! Cost: one multiply-add per sample for the block energy; at the end of each block, eight
//! Goertzel filters run side by side over the block when it holds enough energy (skipped in
//! silence), two more for the harmonic check when a key passes the other tests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Digit, DtmfEvent, DtmfSource};

/// Samples per analysis block (12.75 ms at 8 kHz; 102 puts the bins near the DTMF
/// frequencies, as in the classic detectors).
pub const BLOCK: usize = 102;
/// Consecutive blocks a key must fill before it is reported (38 ms).
pub const PRESENT_BLOCKS: u32 = 3;
/// Consecutive blocks without the reported key before the same key counts again (38 ms).
pub const ABSENT_BLOCKS: u32 = 3;
/// Weakest tone accepted, per frequency, in dBm0.
pub const MIN_TONE_DBM0: f32 = -40.0;

/// Sampling rate the detector expects.
const RATE: f32 = 8000.0;
/// Row (low group) frequencies.
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) frequencies.
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keypad, row by row.
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Amplitude of a 0 dBm0 sine in 16-bit linear units: 3.17 dB below the µ-law overload
/// point (G.711 Table 2a, ±8159 in 14 bits).
const DBM0_AMPLITUDE: f32 = 22_650.0;
/// Row tone over column tone at most (8 dB, "normal twist").
const NORMAL_TWIST: f32 = 6.31;
/// Column tone over row tone at most (4 dB, "reverse twist").
const REVERSE_TWIST: f32 = 2.51;
/// The strongest row (column) over any other row (column) at least (8 dB).
const RELATIVE_PEAK: f32 = 6.31;
/// Share of the block's energy the two tones must hold.
const TONE_TO_TOTAL: f32 = 0.75;
/// A tone over its 2nd harmonic at least (12 dB).
const HARMONIC_REJECT: f32 = 15.8;

/// How far a row's 2nd harmonic must be from the column tone to be checked (the column's
/// leakage is 26 dB down there).
const HARMONIC_CLEARANCE_HZ: f32 = 150.0;

/// `2 cos(2π f / 8000)` for the Goertzel recurrence.
fn coefficient(freq: f32) -> f32 {
    2.0 * (2.0 * std::f32::consts::PI * freq / RATE).cos()
}

/// Power of a sine with `dbm0` level, in (16-bit units)².
fn dbm0_power(dbm0: f32) -> f32 {
    DBM0_AMPLITUDE * DBM0_AMPLITUDE / 2.0 * 10f32.powf(dbm0 / 10.0)
}

/// The power at one frequency over a block, scaled so a sine of amplitude `a` there gives
/// about `a² / 2` (the block's mean power for that sine alone).
fn goertzel(block: &[f32; BLOCK], coef: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s = x + coef * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let n = BLOCK as f32;
    (s1 * s1 + s2 * s2 - coef * s1 * s2) * 2.0 / (n * n)
}

/// The eight key-tone filters over one block at once (rows then columns): the same
/// recurrence as [`goertzel`], lane by lane, so each power is exactly what `goertzel` gives,
/// but the eight independent chains run side by side (and vectorise) instead of one after
/// another, each waiting on its own previous step.
fn goertzel_bank(block: &[f32; BLOCK], coefs: &[f32; 8]) -> [f32; 8] {
    let (mut s1, mut s2) = ([0.0f32; 8], [0.0f32; 8]);
    for &x in block {
        for k in 0..8 {
            let s = x + coefs[k] * s1[k] - s2[k];
            s2[k] = s1[k];
            s1[k] = s;
        }
    }
    let n = BLOCK as f32;
    std::array::from_fn(|k| {
        (s1[k] * s1[k] + s2[k] * s2[k] - coefs[k] * s1[k] * s2[k]) * 2.0 / (n * n)
    })
}

/// Index and value of the largest of four powers.
fn strongest(powers: &[f32; 4]) -> (usize, f32) {
    let mut best = 0;
    for i in 1..4 {
        if powers[i] > powers[best] {
            best = i;
        }
    }
    (best, powers[best])
}

/// In-band DTMF detector for one audio stream (8 kHz linear samples).
#[derive(Debug, Clone)]
pub struct InbandDetector {
    /// The row tones' filter coefficients, then the columns'.
    tone_coef: [f32; 8],
    row_harmonic_coef: [f32; 4],
    col_harmonic_coef: [f32; 4],
    min_tone: f32,
    block: [f32; BLOCK],
    filled: usize,
    energy: f32,
    /// The key of the latest blocks and how many consecutive blocks held it.
    candidate: Option<Digit>,
    hits: u32,
    /// The key last reported, until it has been absent for [`ABSENT_BLOCKS`].
    reported: Option<Digit>,
    misses: u32,
    /// Keys found in one call after the first (only when a call passes > 38 ms of audio).
    pending: VecDeque<DtmfEvent>,
}

impl Default for InbandDetector {
    fn default() -> Self {
        InbandDetector::new()
    }
}

impl InbandDetector {
    /// A detector with no audio seen yet.
    pub fn new() -> InbandDetector {
        InbandDetector {
            tone_coef: std::array::from_fn(|k| {
                coefficient(if k < 4 { ROWS[k] } else { COLS[k - 4] })
            }),
            row_harmonic_coef: ROWS.map(|f| coefficient(2.0 * f)),
            col_harmonic_coef: COLS.map(|f| coefficient(2.0 * f)),
            min_tone: dbm0_power(MIN_TONE_DBM0),
            block: [0.0; BLOCK],
            filled: 0,
            energy: 0.0,
            candidate: None,
            hits: 0,
            reported: None,
            misses: 0,
            pending: VecDeque::new(),
        }
    }

    /// Takes the next samples of the stream; `now` is the time of `pcm[0]`. Returns a key
    /// the first time it is confirmed, with `at` the time of the sample that confirmed it.
    /// Chunks of up to 38 ms (a 20 ms packet) confirm at most one key; when a longer chunk
    /// confirms several, the others come from [`next_event`](Self::next_event).
    pub fn on_samples(&mut self, now: Instant, pcm: &[i16]) -> Option<DtmfEvent> {
        for (i, &sample) in pcm.iter().enumerate() {
            let x = f32::from(sample);
            self.block[self.filled] = x;
            self.energy += x * x;
            self.filled += 1;
            if self.filled == BLOCK {
                let found = self.analyse();
                self.filled = 0;
                self.energy = 0.0;
                if let Some(digit) = self.advance(found) {
                    let at = now + Duration::from_micros((i as u64 + 1) * 125);
                    let duration_ms = self.hits * BLOCK as u32 / 8;
                    self.pending.push_back(DtmfEvent {
                        digit,
                        at,
                        duration_ms,
                        source: DtmfSource::Inband,
                    });
                }
            }
        }
        self.pending.pop_front()
    }

    /// A further key confirmed by the last [`on_samples`](Self::on_samples) call, if any.
    pub fn next_event(&mut self) -> Option<DtmfEvent> {
        self.pending.pop_front()
    }

    /// The key a full block holds, if it passes every test.
    fn analyse(&self) -> Option<Digit> {
        let total = self.energy / BLOCK as f32;
        if total < 2.0 * self.min_tone * TONE_TO_TOTAL {
            return None;
        }
        let p = goertzel_bank(&self.block, &self.tone_coef);
        let rows = [p[0], p[1], p[2], p[3]];
        let cols = [p[4], p[5], p[6], p[7]];
        let (r, row) = strongest(&rows);
        let (c, col) = strongest(&cols);
        if row < self.min_tone || col < self.min_tone {
            return None;
        }
        if row > col * NORMAL_TWIST || col > row * REVERSE_TWIST {
            return None;
        }
        if row + col < total * TONE_TO_TOTAL {
            return None;
        }
        let peaks_stand_out = (0..4).all(|i| {
            (i == r || rows[i] * RELATIVE_PEAK <= row) && (i == c || cols[i] * RELATIVE_PEAK <= col)
        });
        if !peaks_stand_out {
            return None;
        }
        if goertzel(&self.block, self.col_harmonic_coef[c]) * HARMONIC_REJECT > col {
            return None;
        }
        // A row's 2nd harmonic (1394–1882 Hz) may sit next to the column tone, whose leakage
        // would pass for it; it is checked only when it is clear of the column.
        if (2.0 * ROWS[r] - COLS[c]).abs() >= HARMONIC_CLEARANCE_HZ
            && goertzel(&self.block, self.row_harmonic_coef[r]) * HARMONIC_REJECT > row
        {
            return None;
        }
        Digit::from_char(KEYS[r][c])
    }

    /// Moves the press state on by one block; returns a key to report.
    fn advance(&mut self, found: Option<Digit>) -> Option<Digit> {
        match found {
            Some(d) if self.candidate == Some(d) => self.hits += 1,
            Some(d) => {
                self.candidate = Some(d);
                self.hits = 1;
            }
            None => {
                self.candidate = None;
                self.hits = 0;
            }
        }
        if self.reported.is_some() {
            if found == self.reported {
                self.misses = 0;
            } else {
                self.misses += 1;
                if self.misses >= ABSENT_BLOCKS {
                    self.reported = None;
                }
            }
        }
        let digit = self.candidate?;
        if self.hits >= PRESENT_BLOCKS && self.reported != Some(digit) {
            self.reported = Some(digit);
            self.misses = 0;
            return Some(digit);
        }
        None
    }
}

#[cfg(test)]
#[path = "inband_tests.rs"]
mod tests;
