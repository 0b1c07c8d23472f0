//! Turns [`Say`] items into the clips that speak them: whole numbers in US English words
//! ("three hundred twenty five"), digit strings one digit at a time, 12-hour clock times
//! ("ten thirty p m", "nine o'clock a m", "twelve oh five p m") and days ("today",
//! "tomorrow", "Wednesday"). Pure functions of their input; an item that cannot be said
//! correctly (an hour of 25, a weekday of 9) says nothing rather than something wrong.

use super::{names, Say};

/// One piece of a spoken sentence: a clip of the prompt set or a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The clip with this file stem (one of [`names::ALL`], or any name for [`Say::Prompt`]).
    Clip(&'static str),
    /// Silence of this many milliseconds.
    Pause(u32),
}

/// Largest number said as words; larger ones are read digit by digit.
pub const MAX_NUMBER: u32 = 999_999;

/// The pieces that speak a whole sentence, in order.
pub fn pieces(say: &[Say]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut words = Vec::new();
    for item in say {
        words.clear();
        match item {
            Say::Prompt(name) => words.push(*name),
            Say::Number(n) => number(*n, &mut words),
            Say::Digits(d) => digits(d, &mut words),
            Say::Time { hour, minute } => time(*hour, *minute, &mut words),
            Say::Day { offset, weekday } => day(*offset, *weekday, &mut words),
            Say::Pause(ms) => out.push(Piece::Pause(*ms)),
        }
        out.extend(words.iter().map(|w| Piece::Clip(w)));
    }
    out
}

/// A whole number in words: 0 "zero", 325 "three hundred twenty five", 12_005 "twelve
/// thousand five". Numbers above [`MAX_NUMBER`] are read digit by digit.
pub fn number(n: u32, out: &mut Vec<&'static str>) {
    if n == 0 {
        out.push(names::SMALL[0]);
    } else if n > MAX_NUMBER {
        digits(&n.to_string(), out);
    } else {
        let (thousands, rest) = (n / 1000, n % 1000);
        if thousands > 0 {
            below_thousand(thousands, out);
            out.push(names::THOUSAND);
        }
        if rest > 0 {
            below_thousand(rest, out);
        }
    }
}

/// 1..=999 in words.
fn below_thousand(n: u32, out: &mut Vec<&'static str>) {
    let (hundreds, rest) = (n / 100, n % 100);
    if hundreds > 0 {
        out.push(small(hundreds));
        out.push(names::HUNDRED);
    }
    if rest > 0 {
        below_hundred(rest, out);
    }
}

/// 1..=99 in words.
fn below_hundred(n: u32, out: &mut Vec<&'static str>) {
    if n < 20 {
        out.push(small(n));
    } else {
        // n / 10 is 2..=9 here, so the index is 0..=7.
        if let Some(tens) = names::TENS.get((n / 10) as usize - 2) {
            out.push(tens);
        }
        if !n.is_multiple_of(10) {
            out.push(small(n % 10));
        }
    }
}

/// The clip of a number below 20 (callers keep `n` in range; out of range says "zero").
fn small(n: u32) -> &'static str {
    names::SMALL
        .get(n as usize)
        .copied()
        .unwrap_or(names::SMALL[0])
}

/// Each digit of a string, one clip a digit; anything else (`+`, spaces, dashes) is skipped.
pub fn digits(s: &str, out: &mut Vec<&'static str>) {
    out.extend(s.chars().filter_map(|c| c.to_digit(10)).map(|d| small(d)));
}

/// A 24-hour time read on the 12-hour clock: 9:00 "nine o'clock a m", 22:30 "ten thirty p m",
/// 12:05 "twelve oh five p m", 0:15 "twelve fifteen a m". Out-of-range times say nothing.
pub fn time(hour: u8, minute: u8, out: &mut Vec<&'static str>) {
    if hour > 23 || minute > 59 {
        return;
    }
    let h12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    out.push(small(u32::from(h12)));
    match minute {
        0 => out.push(names::OCLOCK),
        1..=9 => {
            out.push(names::OH);
            out.push(small(u32::from(minute)));
        }
        _ => below_hundred(u32::from(minute), out),
    }
    out.push(if hour < 12 { names::AM } else { names::PM });
}

/// A day relative to today: 0 "today", 1 "tomorrow", else the weekday (0 = Monday). A
/// weekday above 6 says nothing.
pub fn day(offset: u8, weekday: u8, out: &mut Vec<&'static str>) {
    match offset {
        0 => out.push(names::TODAY),
        1 => out.push(names::TOMORROW),
        _ => {
            if let Some(name) = names::DAYS.get(usize::from(weekday)) {
                out.push(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: u32) -> Vec<&'static str> {
        let mut v = Vec::new();
        number(x, &mut v);
        v
    }

    fn t(h: u8, m: u8) -> String {
        let mut v = Vec::new();
        time(h, m, &mut v);
        v.join(" ")
    }

    #[test]
    fn numbers_in_words() {
        let cases: [(u32, &str); 20] = [
            (0, "n_0"),
            (7, "n_7"),
            (13, "n_13"),
            (19, "n_19"),
            (20, "n_20"),
            (21, "n_20 n_1"),
            (99, "n_90 n_9"),
            (100, "n_1 hundred"),
            (101, "n_1 hundred n_1"),
            (110, "n_1 hundred n_10"),
            (325, "n_3 hundred n_20 n_5"),
            (999, "n_9 hundred n_90 n_9"),
            (1000, "n_1 thousand"),
            (1001, "n_1 thousand n_1"),
            (1100, "n_1 thousand n_1 hundred"),
            (12_005, "n_12 thousand n_5"),
            (40_000, "n_40 thousand"),
            (100_000, "n_1 hundred thousand"),
            (
                999_999,
                "n_9 hundred n_90 n_9 thousand n_9 hundred n_90 n_9",
            ),
            (1_000_000, "n_1 n_0 n_0 n_0 n_0 n_0 n_0"),
        ];
        for (x, want) in cases {
            assert_eq!(n(x).join(" "), want, "{x}");
        }
    }

    #[test]
    fn every_number_uses_known_clips_only() {
        for x in (0..=MAX_NUMBER).step_by(7).chain([u32::MAX]) {
            for w in n(x) {
                assert!(names::ALL.contains(&w), "{x}: {w}");
            }
        }
    }

    #[test]
    fn digits_one_by_one() {
        let mut v = Vec::new();
        digits("+1 (555) 010-9", &mut v);
        assert_eq!(v.join(" "), "n_1 n_5 n_5 n_5 n_0 n_1 n_0 n_9");
    }

    #[test]
    fn times_on_the_twelve_hour_clock() {
        assert_eq!(t(9, 0), "n_9 oclock am");
        assert_eq!(t(22, 30), "n_10 n_30 pm");
        assert_eq!(t(12, 5), "n_12 oh n_5 pm");
        assert_eq!(t(0, 15), "n_12 n_15 am");
        assert_eq!(t(0, 0), "n_12 oclock am");
        assert_eq!(t(12, 0), "n_12 oclock pm");
        assert_eq!(t(11, 59), "n_11 n_50 n_9 am");
        assert_eq!(t(13, 45), "n_1 n_40 n_5 pm");
        assert_eq!(t(23, 10), "n_11 n_10 pm");
        assert_eq!(t(24, 0), "");
        assert_eq!(t(10, 60), "");
    }

    #[test]
    fn days() {
        let d = |o, w| {
            let mut v = Vec::new();
            day(o, w, &mut v);
            v.join(" ")
        };
        assert_eq!(d(0, 3), "today");
        assert_eq!(d(1, 3), "tomorrow");
        assert_eq!(d(2, 0), "day_0");
        assert_eq!(d(5, 6), "day_6");
        assert_eq!(d(3, 7), "");
    }

    #[test]
    fn a_sentence() {
        let say = [
            Say::Prompt(names::SLOTS_INTRO),
            Say::Pause(300),
            Say::Prompt(names::FOR),
            Say::Day {
                offset: 2,
                weekday: 2,
            },
            Say::Prompt(names::AT),
            Say::Time {
                hour: 14,
                minute: 30,
            },
            Say::Prompt(names::PRESS),
            Say::Number(1),
            Say::Digits("+44".into()),
        ];
        use Piece::*;
        assert_eq!(
            pieces(&say),
            [
                Clip("slots_intro"),
                Pause(300),
                Clip("for"),
                Clip("day_2"),
                Clip("at"),
                Clip("n_2"),
                Clip("n_30"),
                Clip("pm"),
                Clip("press"),
                Clip("n_1"),
                Clip("n_4"),
                Clip("n_4"),
            ]
        );
    }
}
