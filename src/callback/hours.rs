//! Business hours per weekday in an IANA time zone, plus holidays.
//!
//! A span `09:00-17:00` on a local date becomes the UTC interval from the first instant the
//! local clock reads 09:00 to the first instant it reads 17:00. Daylight-saving edges:
//! a wall-clock time skipped by a spring-forward gap maps to the instant the gap ends
//! (a span `02:30-05:00` on that day opens at 03:00); a time that occurs twice in a
//! fall-back overlap maps to its first occurrence. So a 24-hour day is 23 or 25 hours long
//! on those days, as the wall clock says. Holidays are local dates closed all day.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// How far [`BusinessHours::next_open`] looks for an opening (a year and a week: enough
/// for any holiday list; a target with no opening in that time is treated as closed).
pub const LOOKAHEAD_DAYS: i64 = 372;

/// How far [`BusinessHours::open_until`] follows back-to-back windows (an always-open
/// target "closes" this far ahead, which no estimate reaches).
pub const MERGE_DAYS: i64 = 8;

/// Minutes in a day; a span may end at `24:00`.
pub const DAY_MINUTES: u16 = 24 * 60;

/// One opening on a day, in local minutes since midnight, `start < end <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Opening minute.
    pub start: u16,
    /// Closing minute (exclusive; 1440 = midnight at the end of the day).
    pub end: u16,
}

impl Span {
    /// Parses `HH:MM-HH:MM` (the end may be `24:00`).
    pub fn parse(s: &str) -> Result<Span, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?}: expected HH:MM-HH:MM"))?;
        let start = parse_minute(a.trim()).ok_or_else(|| format!("{s:?}: bad start time"))?;
        let end = parse_minute(b.trim()).ok_or_else(|| format!("{s:?}: bad end time"))?;
        if start >= end {
            return Err(format!(
                "{s:?}: the end must be after the start (for hours past midnight, end this day at 24:00 and open the next at 00:00)"
            ));
        }
        Ok(Span { start, end })
    }
}

fn parse_minute(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    match (h, m) {
        (24, 0) => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Opening hours of a call target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    tz: Tz,
    /// Monday first.
    week: [Vec<Span>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl BusinessHours {
    /// Open around the clock, every day, in UTC.
    pub fn always_open() -> Self {
        let all = vec![Span {
            start: 0,
            end: DAY_MINUTES,
        }];
        BusinessHours {
            tz: Tz::UTC,
            week: std::array::from_fn(|_| all.clone()),
            holidays: BTreeSet::new(),
        }
    }

    /// Hours from parts: the spans of each weekday (Monday first, sorted or not; overlaps
    /// are allowed) and the holiday dates.
    pub fn new(tz: Tz, week: [Vec<Span>; 7], holidays: BTreeSet<NaiveDate>) -> Self {
        let week = week.map(|mut v| {
            v.sort_by_key(|s| s.start);
            v
        });
        BusinessHours { tz, week, holidays }
    }

    /// The time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The UTC windows of one local date (none on a holiday), in order.
    pub fn day_windows(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.holidays.contains(&date) {
            return vec![];
        }
        let spans = &self.week[date.weekday().num_days_from_monday() as usize];
        spans
            .iter()
            .filter_map(|s| {
                let a = self.instant(date, s.start)?;
                let b = self.instant(date, s.end)?;
                (a < b).then_some((a, b))
            })
            .collect()
    }

    /// First instant the local clock reads `minute` on `date` (see the module notes).
    fn instant(&self, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        let (date, minute) = if minute >= DAY_MINUTES {
            (date.succ_opt()?, minute - DAY_MINUTES)
        } else {
            (date, minute)
        };
        let time = NaiveTime::from_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?;
        let naive = date.and_time(time);
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
            LocalResult::None => {
                // In a spring-forward gap: the first valid local minute after it. Gaps are
                // at most a few hours (the largest in tzdata is 24 h, in Pacific/Apia 2011).
                (1..=25 * 60).find_map(|k| {
                    let t = naive + Duration::minutes(k);
                    match self.tz.from_local_datetime(&t) {
                        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                            Some(t.with_timezone(&Utc))
                        }
                        LocalResult::None => None,
                    }
                })
            }
        }
    }

    /// The local date of an instant.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// Windows of the local dates `from ..= to`, merged where they touch or overlap.
    fn merged(&self, from: NaiveDate, to: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        let mut d = from;
        while d <= to {
            for (a, b) in self.day_windows(d) {
                match out.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => out.push((a, b)),
                }
            }
            let Some(next) = d.succ_opt() else { break };
            d = next;
        }
        out
    }

    /// Whether the call target is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let d = self.local_date(now);
        self.merged(d - Duration::days(1), d + Duration::days(1))
            .iter()
            .any(|(a, b)| *a <= now && now < *b)
    }

    /// When the open period containing `now` ends, following back-to-back windows; `None`
    /// when closed at `now`. A period still open at the end of the look-ahead
    /// ([`MERGE_DAYS`]) never closes as far as anyone can tell: `DateTime::<Utc>::MAX_UTC`.
    pub fn open_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let d = self.local_date(now);
        let last = d + Duration::days(MERGE_DAYS);
        let horizon = self.day_windows(last).last().map(|w| w.1);
        self.merged(d - Duration::days(1), last)
            .into_iter()
            .find(|(a, b)| *a <= now && now < *b)
            .map(|(_, b)| match horizon {
                Some(h) if b >= h && self.open_at_day_end(last) => DateTime::<Utc>::MAX_UTC,
                _ => b,
            })
    }

    /// Whether the local date's last window runs to midnight.
    fn open_at_day_end(&self, date: NaiveDate) -> bool {
        let spans = &self.week[date.weekday().num_days_from_monday() as usize];
        !self.holidays.contains(&date) && spans.iter().any(|s| s.end == DAY_MINUTES)
    }

    /// The earliest instant at or after `now` when the call target is open (`now` itself
    /// when open); `None` if it never opens within [`LOOKAHEAD_DAYS`].
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut d = self.local_date(now) - Duration::days(1);
        let last = d + Duration::days(LOOKAHEAD_DAYS);
        while d <= last {
            for (a, b) in self.day_windows(d) {
                if b > now {
                    return Some(a.max(now));
                }
            }
            d = d.succ_opt()?;
        }
        None
    }

    /// The next opening strictly after the current open period (or the next opening, when
    /// closed): where next-business-day callbacks start.
    pub fn next_opening_after_close(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.open_until(now) {
            Some(end) if end == DateTime::<Utc>::MAX_UTC => None,
            Some(end) => self.next_open(end),
            None => self.next_open(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hours(tz: &str, spans: &[&str], weekend: &[&str], holidays: &[&str]) -> BusinessHours {
        let p = |v: &[&str]| {
            v.iter()
                .map(|s| Span::parse(s).unwrap())
                .collect::<Vec<_>>()
        };
        let wd = p(spans);
        let we = p(weekend);
        let week = [
            wd.clone(),
            wd.clone(),
            wd.clone(),
            wd.clone(),
            wd.clone(),
            we.clone(),
            we,
        ];
        let hol = holidays.iter().map(|d| d.parse().unwrap()).collect();
        BusinessHours::new(tz.parse().unwrap(), week, hol)
    }

    #[test]
    fn spans_parse_and_refuse_nonsense() {
        assert_eq!(
            Span::parse("09:00-17:30").unwrap(),
            Span {
                start: 540,
                end: 1050
            }
        );
        assert_eq!(Span::parse("00:00-24:00").unwrap().end, 1440);
        for bad in [
            "9-17",
            "17:00-09:00",
            "09:00-09:00",
            "24:30-25:00",
            "09:60-10:00",
            "x",
        ] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn weekday_hours_in_a_time_zone() {
        // New York, winter (UTC-5): 09:00-17:00 local = 14:00-22:00 UTC.
        let h = hours("America/New_York", &["09:00-17:00"], &[], &[]);
        assert!(!h.is_open(utc("2026-01-14T13:59:59Z")));
        assert!(h.is_open(utc("2026-01-14T14:00:00Z")));
        assert!(h.is_open(utc("2026-01-14T21:59:59Z")));
        assert!(!h.is_open(utc("2026-01-14T22:00:00Z")));
        assert_eq!(
            h.open_until(utc("2026-01-14T15:00:00Z")),
            Some(utc("2026-01-14T22:00:00Z"))
        );
        // Friday evening → Monday 09:00.
        assert_eq!(
            h.next_open(utc("2026-01-16T23:00:00Z")),
            Some(utc("2026-01-19T14:00:00Z"))
        );
        // Saturday is closed.
        assert!(!h.is_open(utc("2026-01-17T15:00:00Z")));
    }

    #[test]
    fn summer_time_moves_the_utc_window() {
        // New York, summer (UTC-4): 09:00 local = 13:00 UTC.
        let h = hours("America/New_York", &["09:00-17:00"], &[], &[]);
        assert!(h.is_open(utc("2026-07-15T13:00:00Z")));
        assert!(!h.is_open(utc("2026-07-15T21:00:00Z")));
    }

    #[test]
    fn spring_forward_gap_opens_when_the_gap_ends() {
        // 2026-03-08, New York: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let h = hours("America/New_York", &["02:30-05:00"], &["02:30-05:00"], &[]);
        let w = h.day_windows("2026-03-08".parse().unwrap());
        assert_eq!(
            w,
            vec![(utc("2026-03-08T07:00:00Z"), utc("2026-03-08T09:00:00Z"))]
        );
        assert!(!h.is_open(utc("2026-03-08T06:59:00Z")));
        assert!(h.is_open(utc("2026-03-08T07:00:00Z")));
        // A span wholly inside the gap does not open at all.
        let g = hours("America/New_York", &["02:10-02:50"], &["02:10-02:50"], &[]);
        assert!(g.day_windows("2026-03-08".parse().unwrap()).is_empty());
        assert_eq!(g.day_windows("2026-03-09".parse().unwrap()).len(), 1);
    }

    #[test]
    fn twenty_four_hour_days_are_23_and_25_hours_at_dst_changes() {
        let h = hours("America/New_York", &["00:00-24:00"], &["00:00-24:00"], &[]);
        let len = |d: &str| {
            let w = h.day_windows(d.parse().unwrap());
            (w[0].1 - w[0].0).num_hours()
        };
        assert_eq!(len("2026-03-08"), 23);
        assert_eq!(len("2026-11-01"), 25);
        assert_eq!(len("2026-11-02"), 24);
        // Always open across both changes: no gap anywhere.
        for t in [
            "2026-03-08T06:59:59Z",
            "2026-03-08T07:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:30:00Z",
        ] {
            assert!(h.is_open(utc(t)), "{t}");
        }
    }

    #[test]
    fn fall_back_overlap_uses_the_first_occurrence() {
        // 2026-11-01, New York: 02:00 EDT falls back to 01:00 EST; 01:30 happens at
        // 05:30 UTC and again at 06:30 UTC. A span ending at 01:30 closes at the first.
        let h = hours("America/New_York", &["00:00-01:30"], &["00:00-01:30"], &[]);
        let w = h.day_windows("2026-11-01".parse().unwrap());
        assert_eq!(
            w,
            vec![(utc("2026-11-01T04:00:00Z"), utc("2026-11-01T05:30:00Z"))]
        );
        assert!(h.is_open(utc("2026-11-01T05:29:00Z")));
        assert!(!h.is_open(utc("2026-11-01T06:00:00Z")));
    }

    #[test]
    fn london_changes_at_one_utc() {
        // Europe/London 2026-03-29: 01:00 GMT becomes 02:00 BST.
        let h = hours("Europe/London", &["08:00-18:00"], &["08:00-18:00"], &[]);
        assert!(!h.is_open(utc("2026-03-28T07:30:00Z")));
        assert!(h.is_open(utc("2026-03-28T08:00:00Z")));
        // Sunday the 29th, BST: 08:00 local is 07:00 UTC.
        assert!(!h.is_open(utc("2026-03-29T06:59:00Z")));
        assert!(h.is_open(utc("2026-03-29T07:00:00Z")));
        assert!(!h.is_open(utc("2026-03-29T17:00:00Z")));
    }

    #[test]
    fn half_hour_time_zones() {
        // Asia/Kolkata is UTC+5:30 with no DST.
        let h = hours("Asia/Kolkata", &["09:00-18:00"], &[], &[]);
        assert!(!h.is_open(utc("2026-01-14T03:29:00Z")));
        assert!(h.is_open(utc("2026-01-14T03:30:00Z")));
    }

    #[test]
    fn holidays_close_the_whole_local_day() {
        let h = hours("Europe/Paris", &["09:00-17:00"], &[], &["2026-12-25"]);
        // 10:00 Paris on Christmas (Friday) = 09:00 UTC: closed.
        assert!(!h.is_open(utc("2026-12-25T09:00:00Z")));
        // Thursday evening → next opening is Monday the 28th, 08:00 UTC.
        assert_eq!(
            h.next_open(utc("2026-12-24T18:00:00Z")),
            Some(utc("2026-12-28T08:00:00Z"))
        );
    }

    #[test]
    fn back_to_back_windows_merge_across_midnight() {
        let always = BusinessHours::always_open();
        assert_eq!(
            always.open_until(utc("2026-01-12T10:00:00Z")),
            Some(DateTime::<Utc>::MAX_UTC),
            "open around the clock never closes"
        );
        assert_eq!(
            always.next_opening_after_close(utc("2026-01-12T10:00:00Z")),
            None
        );
        let h = hours("UTC", &["00:00-24:00"], &[], &[]);
        // Monday 10:00: open until Saturday 00:00.
        assert_eq!(
            h.open_until(utc("2026-01-12T10:00:00Z")),
            Some(utc("2026-01-17T00:00:00Z"))
        );
        assert_eq!(
            h.next_opening_after_close(utc("2026-01-12T10:00:00Z")),
            Some(utc("2026-01-19T00:00:00Z"))
        );
    }

    #[test]
    fn split_days_and_never_open() {
        let h = hours("UTC", &["09:00-12:00", "13:00-17:00"], &[], &[]);
        assert!(!h.is_open(utc("2026-01-14T12:30:00Z")));
        assert_eq!(
            h.next_open(utc("2026-01-14T12:30:00Z")),
            Some(utc("2026-01-14T13:00:00Z"))
        );
        assert_eq!(
            h.open_until(utc("2026-01-14T10:00:00Z")),
            Some(utc("2026-01-14T12:00:00Z"))
        );
        let never = hours("UTC", &[], &[], &[]);
        assert_eq!(never.next_open(utc("2026-01-14T12:30:00Z")), None);
        assert!(!never.is_open(utc("2026-01-14T12:30:00Z")));
    }
}
