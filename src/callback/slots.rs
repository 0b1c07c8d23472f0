//! Scheduled-callback timeslots: slot starts inside the business-hours windows of the local
//! dates today ..= today + `days_ahead`, aligned to each window's opening, whole slots only.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::config::ScheduledSettings;
use super::hours::BusinessHours;

/// Most timeslots listed in one widget status (a 24-hour target with 10-minute slots over
/// 30 days would list 4 320; flows present a handful).
pub const MAX_TIMESLOTS: usize = 500;

/// The slots a customer may book now: not before `earliest`, not full, at most
/// [`MAX_TIMESLOTS`], in time order. `booked` counts booked callbacks per slot start
/// (Unix seconds).
pub fn offered(
    hours: &BusinessHours,
    s: &ScheduledSettings,
    now: DateTime<Utc>,
    earliest: DateTime<Utc>,
    booked: &BTreeMap<i64, u32>,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    if !s.enabled || s.slot_secs == 0 {
        return out;
    }
    let slot = Duration::seconds(i64::from(s.slot_secs));
    let today = hours.local_date(now);
    for day in 0..=i64::from(s.days_ahead) {
        let date = today + Duration::days(day);
        for (open, close) in hours.day_windows(date) {
            let mut t = open;
            while t + slot <= close {
                let full = booked.get(&t.timestamp()).copied().unwrap_or(0) >= s.max_per_slot;
                if t >= earliest && !full {
                    out.push(t);
                    if out.len() == MAX_TIMESLOTS {
                        return out;
                    }
                }
                t += slot;
            }
        }
    }
    out
}

/// Whether `t` is a slot start on offer (ignoring how full it is): used to tell a full
/// slot (`maxScheduledCallsExceeded`) from a time that is no slot at all.
pub fn is_slot(
    hours: &BusinessHours,
    s: &ScheduledSettings,
    now: DateTime<Utc>,
    earliest: DateTime<Utc>,
    t: DateTime<Utc>,
) -> bool {
    if !s.enabled || s.slot_secs == 0 || t < earliest {
        return false;
    }
    let today = hours.local_date(now);
    let last = today + Duration::days(i64::from(s.days_ahead));
    let slot_secs = i64::from(s.slot_secs);
    // A slot belongs to the local date its window opens on; look at t's date and the day
    // before (a window may be reported under either around midnight and DST changes).
    let date = hours.local_date(t);
    [date.pred_opt(), Some(date)]
        .into_iter()
        .flatten()
        .filter(|d| *d >= today && *d <= last)
        .flat_map(|d| hours.day_windows(d))
        .any(|(open, close)| {
            t >= open
                && t + Duration::seconds(slot_secs) <= close
                && (t - open).num_seconds() % slot_secs == 0
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::hours::Span;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn settings(slot_min: u32, max: u32, days: u32) -> ScheduledSettings {
        ScheduledSettings {
            enabled: true,
            slot_secs: slot_min * 60,
            max_per_slot: max,
            days_ahead: days,
        }
    }

    fn nine_to_five(tz: &str) -> BusinessHours {
        let d = vec![Span::parse("09:00-17:00").unwrap()];
        BusinessHours::new(
            tz.parse().unwrap(),
            [
                d.clone(),
                d.clone(),
                d.clone(),
                d.clone(),
                d,
                vec![],
                vec![],
            ],
            Default::default(),
        )
    }

    #[test]
    fn slots_fill_the_open_hours_from_now_on() {
        let h = nine_to_five("UTC");
        let now = utc("2026-01-14T15:10:00Z"); // Wednesday
        let s = settings(60, 2, 1);
        let v = offered(&h, &s, now, now, &BTreeMap::new());
        // Wednesday 16:00 only (15:00 began before now), then Thursday 09:00-16:00.
        assert_eq!(v[0], utc("2026-01-14T16:00:00Z"));
        assert_eq!(v[1], utc("2026-01-15T09:00:00Z"));
        assert_eq!(v.len(), 1 + 8);
        assert!(is_slot(&h, &s, now, now, utc("2026-01-15T12:00:00Z")));
        assert!(!is_slot(&h, &s, now, now, utc("2026-01-15T12:30:00Z")));
        assert!(!is_slot(&h, &s, now, now, utc("2026-01-15T17:00:00Z")));
        assert!(!is_slot(&h, &s, now, now, utc("2026-01-14T15:00:00Z")));
    }

    #[test]
    fn full_slots_and_minimum_delay_are_left_out() {
        let h = nine_to_five("UTC");
        let now = utc("2026-01-14T08:00:00Z");
        let s = settings(30, 2, 0);
        let mut booked = BTreeMap::new();
        booked.insert(utc("2026-01-14T10:00:00Z").timestamp(), 2);
        booked.insert(utc("2026-01-14T10:30:00Z").timestamp(), 1);
        let earliest = utc("2026-01-14T09:45:00Z");
        let v = offered(&h, &s, now, earliest, &booked);
        assert_eq!(v[0], utc("2026-01-14T10:30:00Z"));
        assert_eq!(v.len(), 16 - 2 - 1);
        // Full, but still a slot.
        assert!(is_slot(&h, &s, now, earliest, utc("2026-01-14T10:00:00Z")));
    }

    #[test]
    fn slots_follow_local_time_across_a_dst_change() {
        // New York: 09:00 local is 14:00 UTC on Friday 6 March and 13:00 UTC on Monday
        // 9 March (after the 8 March spring-forward).
        let h = nine_to_five("America/New_York");
        let now = utc("2026-03-06T20:00:00Z");
        let v = offered(&h, &settings(60, 1, 3), now, now, &BTreeMap::new());
        assert_eq!(v[0], utc("2026-03-06T20:00:00Z"));
        assert_eq!(v[1], utc("2026-03-06T21:00:00Z"));
        assert_eq!(v[2], utc("2026-03-09T13:00:00Z"));
    }

    #[test]
    fn disabled_or_closed_means_no_slots_and_the_list_is_bounded() {
        let h = nine_to_five("UTC");
        let now = utc("2026-01-14T08:00:00Z");
        let mut s = settings(30, 1, 2);
        s.enabled = false;
        assert!(offered(&h, &s, now, now, &BTreeMap::new()).is_empty());
        let all = BusinessHours::always_open();
        let v = offered(&all, &settings(10, 1, 30), now, now, &BTreeMap::new());
        assert_eq!(v.len(), MAX_TIMESLOTS);
    }
}
