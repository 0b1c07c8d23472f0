//! How a wait, a next-business-day callback or an appointment is worded for a person, in
//! widget and API messages: "in less than a minute", "in about 1 minute", "in about 25
//! minutes", "tomorrow at 09:15", "on Monday at 09:15". A wait of a few hundred minutes is
//! never what a caller should read: callbacks that are not for today are quoted as a day
//! and a time.
//!
//! Times are wall-clock times in the zone the caller asked for (the widget status's
//! `time_zone`, UTC when omitted); the caller of these functions converts them.

use chrono::NaiveDateTime;

/// What is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// An ASAP callback today: the estimated wait, seconds.
    Wait(u64),
    /// A callback on another day or at an appointment: when it is expected (local).
    At(NaiveDateTime),
}

/// Waits under this many seconds are "less than a minute".
const UNDER_A_MINUTE_SECS: u64 = 60;

/// Whole minutes in a wait: rounded to the nearest minute, at least 1.
fn minutes(secs: u64) -> u64 {
    (secs.saturating_add(30) / 60).max(1)
}

fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A wait in words: "less than a minute", "about 1 minute", "about 2 hours 5 minutes".
pub fn wait_words(secs: u64) -> String {
    if secs < UNDER_A_MINUTE_SECS {
        return "less than a minute".into();
    }
    let m = minutes(secs);
    let (h, m) = (m / 60, m % 60);
    match (h, m) {
        (0, m) => format!("about {}", count(m, "minute", "minutes")),
        (h, 0) => format!("about {}", count(h, "hour", "hours")),
        (h, m) => format!(
            "about {} {}",
            count(h, "hour", "hours"),
            count(m, "minute", "minutes")
        ),
    }
}

/// A day and a time relative to `now` (both local): "today at 16:30", "tomorrow at 09:15",
/// "on Monday at 09:15" within the week, else "on 2026-02-03 at 09:15".
pub fn day_and_time(now: NaiveDateTime, at: NaiveDateTime) -> String {
    let time = at.format("%H:%M");
    let days = (at.date() - now.date()).num_days();
    match days {
        ..=0 => format!("today at {time}"),
        1 => format!("tomorrow at {time}"),
        2..=6 => format!("on {} at {time}", at.format("%A")),
        _ => format!("on {} at {time}", at.format("%Y-%m-%d")),
    }
}

/// `{wait}`: "less than a minute", "about 12 minutes", or "until tomorrow at 09:15".
pub fn wait(q: Quote, now: NaiveDateTime) -> String {
    match q {
        Quote::Wait(secs) => wait_words(secs),
        Quote::At(at) => format!("until {}", day_and_time(now, at)),
    }
}

/// `{when}`: "in less than a minute", "in about 12 minutes", or a day and a time.
pub fn when(q: Quote, now: NaiveDateTime) -> String {
    match q {
        Quote::Wait(secs) => format!("in {}", wait_words(secs)),
        Quote::At(at) => day_and_time(now, at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_words(0), "less than a minute");
        assert_eq!(wait_words(59), "less than a minute");
        assert_eq!(wait_words(60), "about 1 minute");
        assert_eq!(wait_words(89), "about 1 minute");
        assert_eq!(wait_words(90), "about 2 minutes");
        assert_eq!(wait_words(25 * 60), "about 25 minutes");
        assert_eq!(wait_words(3600), "about 1 hour");
        assert_eq!(wait_words(3600 + 60), "about 1 hour 1 minute");
        assert_eq!(wait_words(2 * 3600 + 5 * 60), "about 2 hours 5 minutes");
        assert_eq!(wait_words(u64::MAX), wait_words(u64::MAX));
    }

    #[test]
    fn other_days_are_a_day_and_a_time() {
        // Wednesday 2026-01-14.
        let now = local("2026-01-14 16:40");
        assert_eq!(
            day_and_time(now, local("2026-01-14 16:55")),
            "today at 16:55"
        );
        assert_eq!(
            day_and_time(now, local("2026-01-15 09:15")),
            "tomorrow at 09:15"
        );
        assert_eq!(
            day_and_time(now, local("2026-01-19 09:15")),
            "on Monday at 09:15"
        );
        assert_eq!(
            day_and_time(now, local("2026-01-21 09:15")),
            "on 2026-01-21 at 09:15"
        );
        assert_eq!(
            when(Quote::At(local("2026-01-15 09:15")), now),
            "tomorrow at 09:15"
        );
        assert_eq!(when(Quote::Wait(0), now), "in less than a minute");
        assert_eq!(when(Quote::Wait(61), now), "in about 1 minute");
        assert_eq!(wait(Quote::Wait(4000), now), "about 1 hour 7 minutes");
        assert_eq!(
            wait(Quote::At(local("2026-01-15 09:15")), now),
            "until tomorrow at 09:15"
        );
    }
}
