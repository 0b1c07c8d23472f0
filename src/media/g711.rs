//! G.711 (ITU-T, 1988) µ-law and A-law: encode, decode and the byte-to-byte conversion
//! tables the relay uses to transcode between the two laws in place. The segment
//! arithmetic follows the public-domain Sun Microsystems reference (`g711.c`).

/// Added to the 14-bit magnitude before µ-law segment search (33 in 14-bit units).
const ULAW_BIAS: i32 = 0x84;
/// Largest 14-bit magnitude µ-law represents.
const ULAW_CLIP: i32 = 8159;
/// Segment end points of µ-law (14-bit magnitudes, bias included).
const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// Segment end points of A-law (13-bit magnitudes).
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

const fn segment(value: i32, ends: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if value <= ends[i] {
            return i;
        }
        i += 1;
    }
    8
}

/// Decodes one µ-law byte to a 16-bit linear sample.
pub const fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u as i32;
    let mut t = ((u & 0x0F) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

/// Encodes a 16-bit linear sample to µ-law.
pub const fn linear_to_ulaw(sample: i16) -> u8 {
    let mut v = (sample as i32) >> 2;
    let mask: i32 = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    if v > ULAW_CLIP {
        v = ULAW_CLIP;
    }
    v += ULAW_BIAS >> 2;
    let seg = segment(v, &ULAW_SEG_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let u = ((seg as i32) << 4) | ((v >> (seg + 1)) & 0x0F);
    (u ^ mask) as u8
}

/// Decodes one A-law byte to a 16-bit linear sample.
pub const fn alaw_to_linear(a: u8) -> i16 {
    let a = (a ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (seg - 1),
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Encodes a 16-bit linear sample to A-law.
pub const fn linear_to_alaw(sample: i16) -> u8 {
    let mut v = (sample as i32) >> 3;
    let mask: i32 = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &ALAW_SEG_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut a = (seg as i32) << 4;
    a |= if seg < 2 {
        (v >> 1) & 0x0F
    } else {
        (v >> seg) & 0x0F
    };
    (a ^ mask) as u8
}

const fn build_ulaw_to_alaw() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = linear_to_alaw(ulaw_to_linear(i as u8));
        i += 1;
    }
    t
}

const fn build_alaw_to_ulaw() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = linear_to_ulaw(alaw_to_linear(i as u8));
        i += 1;
    }
    t
}

/// µ-law byte → the A-law byte of the same sample (decode, then encode), built at compile time.
pub static ULAW_TO_ALAW: [u8; 256] = build_ulaw_to_alaw();
/// A-law byte → the µ-law byte of the same sample, built at compile time.
pub static ALAW_TO_ULAW: [u8; 256] = build_alaw_to_ulaw();

/// The direction of a G.711 transcoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transcode {
    /// PCMU in, PCMA out.
    UlawToAlaw,
    /// PCMA in, PCMU out.
    AlawToUlaw,
}

impl Transcode {
    /// Rewrites a G.711 payload in place: both laws take one byte a sample.
    pub fn apply(self, payload: &mut [u8]) {
        let table = match self {
            Transcode::UlawToAlaw => &ULAW_TO_ALAW,
            Transcode::AlawToUlaw => &ALAW_TO_ULAW,
        };
        for b in payload {
            *b = table[usize::from(*b)];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The width of the quantisation step a code sits in, so "within one step" is precise.
    fn step(sample: i16) -> i32 {
        let m = i32::from(sample).abs();
        (m / 16).max(16)
    }

    #[test]
    fn reference_values() {
        // Silence codes and full scale, from G.711 tables 1a/2a.
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_decodes_and_reencodes_to_itself() {
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#04x}");
            let u = linear_to_ulaw(ulaw_to_linear(c));
            // µ-law has two zero codes (0x7F and 0xFF); both decode to 0 and 0 encodes to 0xFF.
            if c == 0x7F {
                assert_eq!(u, 0xFF);
            } else {
                assert_eq!(u, c, "µ-law {c:#04x}");
            }
        }
    }

    #[test]
    fn encoding_is_monotonic_over_every_linear_sample() {
        let mut last = i32::MIN;
        for s in i16::MIN..=i16::MAX {
            let d = i32::from(alaw_to_linear(linear_to_alaw(s)));
            assert!(d >= last, "A-law not monotonic at {s}");
            assert!(
                (d - i32::from(s)).abs() <= step(s) * 2,
                "A-law error at {s}: {d}"
            );
            last = d;
        }
    }

    #[test]
    fn transcoding_keeps_the_sample_within_one_step() {
        for c in 0..=255u8 {
            let lin = ulaw_to_linear(c);
            let via_a = alaw_to_linear(ULAW_TO_ALAW[usize::from(c)]);
            assert!(
                (i32::from(via_a) - i32::from(lin)).abs() <= step(lin),
                "µ {c:#04x}: {lin} became {via_a}"
            );
            let lin = alaw_to_linear(c);
            let via_u = ulaw_to_linear(ALAW_TO_ULAW[usize::from(c)]);
            assert!(
                (i32::from(via_u) - i32::from(lin)).abs() <= step(lin),
                "A {c:#04x}: {lin} became {via_u}"
            );
        }
    }

    #[test]
    fn alaw_round_trip_through_ulaw_moves_few_codes_by_one_step() {
        // µ-law is finer than A-law except in its lowest segments, so A → µ → A gives back
        // the A-law code for all but 16 codes (8 magnitudes × 2 signs), each one step away.
        let changed: Vec<u8> = (0..=255u8)
            .filter(|&a| ULAW_TO_ALAW[usize::from(ALAW_TO_ULAW[usize::from(a)])] != a)
            .collect();
        assert_eq!(changed.len(), 16, "{changed:x?}");
        for a in changed {
            let back = ULAW_TO_ALAW[usize::from(ALAW_TO_ULAW[usize::from(a)])];
            assert_eq!((a ^ 0x55) & 0x80, (back ^ 0x55) & 0x80, "sign kept");
            assert_eq!(
                ((a ^ 0x55) & 0x7F).abs_diff((back ^ 0x55) & 0x7F),
                1,
                "{a:#04x}"
            );
        }
        let mut p = [0xD5u8, 0x55, 0xAA, 0x2A, 0x80];
        let orig = p;
        Transcode::AlawToUlaw.apply(&mut p);
        assert_ne!(p, orig);
        Transcode::UlawToAlaw.apply(&mut p);
        assert_eq!(p, orig);
    }
}
