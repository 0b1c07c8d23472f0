//! What happens to a new caller, decided once when the INVITE arrives from the call target's
//! widget view (the same [`TargetView`] the API computes), its callback settings and its IVR
//! settings: the menu, a registration at once (`ivr = "none"`), or the `not_offering`
//! handling.

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::config::{IvrMode, IvrSettings, NotOfferingMode};
use crate::callback::config::CallbackSettings;
use crate::callback::engine::TargetView;
use crate::callback::model::WidgetState;
use crate::media::prompt::{names, Say};

/// Most scheduled slots read out in the menu (each costs the caller ~4 s of listening).
pub const MAX_SLOTS_READ: usize = 3;

/// One scheduled slot as the caller hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotChoice {
    /// The slot start (what the registration asks for).
    pub start: DateTime<Utc>,
    /// Local days from today (0 today, 1 tomorrow), capped at 255.
    pub day_offset: u8,
    /// Local weekday, 0 = Monday.
    pub weekday: u8,
    /// Local hour, 0-23.
    pub hour: u8,
    /// Local minute.
    pub minute: u8,
}

/// What the menu offers one caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The estimated callback time to quote, seconds (`None`: not quoted).
    pub ewt_secs: Option<u64>,
    /// The ASAP callback is a next-business-day one (closed, or it would launch after
    /// closing): the next-day menu, `nextDayCallbackOffered`.
    pub next_day: bool,
    /// Scheduled slots to read out (option 3), at most [`MAX_SLOTS_READ`]; empty: no option 3.
    pub slots: Vec<SlotChoice>,
    /// A contact center to keep holding for exists (option 0 / `*`).
    pub can_hold: bool,
    /// The caller's own number (P-Asserted-Identity or From); `None` (anonymous): no
    /// option 1 and no option 3, only another number.
    pub caller_number: Option<String>,
}

/// What to do with a caller when callbacks are not offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOffering {
    /// Bridge to the contact center, after this announcement if not empty
    /// (`display_ewt_only`: the quoted wait and "please hold while we connect you").
    Bridge {
        /// Said before bridging; empty: bridge without answering first.
        announce: Vec<Say>,
    },
    /// Answer, say this prompt (one of `closed`, `wait_too_long`, `unavailable`), hang up.
    Announce(&'static str),
    /// Refuse the INVITE with this SIP status.
    Reject(u16),
}

/// What happens to a new caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The offer and the menu.
    Menu(Offer),
    /// `ivr = "none"`: register for the caller's number now, confirm, hang up.
    RegisterAtOnce {
        /// The caller's number.
        number: String,
        /// It will be a next-business-day callback.
        next_day: bool,
        /// A contact center to keep holding for exists (offered if the registration is
        /// refused).
        can_hold: bool,
    },
    /// Callbacks are not offered now.
    NotOffering {
        /// The widget state that decided it (recorded as the reason).
        reason: WidgetState,
        /// What to do.
        then: NotOffering,
    },
}

/// Decides what happens to a caller arriving at `now` (the instant `view` was computed
/// for). `caller_number` is the caller's number (empty counts as none).
///
/// Rules:
/// - `offer_callback` / `offer_asap_callback`: the menu, or with `ivr = "none"` a
///   registration at once (the menu after all when the caller's number is unknown, so the
///   caller can key one in).
/// - Any other state: `not_offering`. `bridge` needs the call target's `contact_center`;
///   without one the caller hears the announcement instead. `display_ewt_only` with a known
///   wait quotes it before bridging.
/// - The announcement: `closed` when the call target is closed now, `wait_too_long` when the
///   wait is above `max_ecbt_secs`, else `unavailable` (disabled, full, store down).
pub fn entry(
    now: DateTime<Utc>,
    view: &TargetView,
    target: &CallbackSettings,
    settings: &IvrSettings,
    caller_number: Option<&str>,
) -> Entry {
    let caller_number = caller_number.filter(|n| !n.trim().is_empty());
    let can_hold = target.contact_center.is_some();
    if view.state.offers_callback() {
        let next_day = is_next_day(now, view, target);
        if let (IvrMode::None, Some(number)) = (settings.mode, caller_number) {
            return Entry::RegisterAtOnce {
                number: number.to_owned(),
                next_day,
                can_hold,
            };
        }
        let slots = match caller_number {
            Some(_) if view.offer_scheduled => slot_choices(now, view, target),
            _ => vec![],
        };
        return Entry::Menu(Offer {
            ewt_secs: view.ewt,
            next_day,
            slots,
            can_hold,
            caller_number: caller_number.map(str::to_owned),
        });
    }
    let announcement = announcement(now, view, target);
    let then = match settings.not_offering {
        NotOfferingMode::Bridge if can_hold => {
            let announce = match (view.state, view.ewt) {
                (WidgetState::DisplayEwtOnly, Some(secs)) => {
                    let mut say = quote_wait(secs, settings.max_quoted_minutes);
                    say.push(Say::Prompt(names::CONNECTING));
                    say
                }
                _ => vec![],
            };
            NotOffering::Bridge { announce }
        }
        NotOfferingMode::Bridge | NotOfferingMode::Announce => NotOffering::Announce(announcement),
        NotOfferingMode::Reject => NotOffering::Reject(settings.reject_status),
    };
    Entry::NotOffering {
        reason: view.state,
        then,
    }
}

/// Whether the ASAP callback `view` offers is a next-business-day one: the engine offers
/// ASAP callbacks today only while open with `now + ewt` before closing; otherwise an offered
/// ASAP callback is the next-day one.
pub fn is_next_day(now: DateTime<Utc>, view: &TargetView, target: &CallbackSettings) -> bool {
    if !view.offer_asap {
        return false;
    }
    match target.hours.open_until(now) {
        None => true,
        Some(close) => {
            let ewt = i64::try_from(view.ewt.unwrap_or(0)).unwrap_or(i64::MAX);
            now.checked_add_signed(chrono::Duration::seconds(ewt))
                .is_none_or(|t| t >= close)
        }
    }
}

/// The prompt explaining why callbacks are not offered.
fn announcement(now: DateTime<Utc>, view: &TargetView, target: &CallbackSettings) -> &'static str {
    if target.enabled && !target.hours.is_open(now) {
        names::CLOSED
    } else if view.ewt.is_some_and(|e| e > target.max_ecbt_secs) {
        names::WAIT_TOO_LONG
    } else {
        names::UNAVAILABLE
    }
}

/// The first [`MAX_SLOTS_READ`] offered slots in the call target's local time.
fn slot_choices(
    now: DateTime<Utc>,
    view: &TargetView,
    target: &CallbackSettings,
) -> Vec<SlotChoice> {
    let tz = target.hours.tz();
    let today = now.with_timezone(&tz).date_naive();
    view.timeslots
        .iter()
        .take(MAX_SLOTS_READ)
        .map(|&start| {
            let local = start.with_timezone(&tz);
            let days = (local.date_naive() - today).num_days().clamp(0, 255);
            SlotChoice {
                start,
                day_offset: u8::try_from(days).unwrap_or(u8::MAX),
                weekday: local.weekday().num_days_from_monday() as u8,
                hour: local.hour() as u8,
                minute: local.minute() as u8,
            }
        })
        .collect()
}

/// Whole minutes quoted for a wait of `secs`: rounded to the nearest minute, at least 1 (a
/// caller told "0 minutes" hears a promise nobody can keep).
pub fn quoted_minutes(secs: u64) -> u64 {
    (secs.saturating_add(30) / 60).max(1)
}

/// "The current wait for a call back is about N minute(s)", or "... about more than <cap>
/// minutes" when N is above `cap_minutes`.
pub fn quote_wait(secs: u64, cap_minutes: u32) -> Vec<Say> {
    let minutes = quoted_minutes(secs);
    if minutes > u64::from(cap_minutes) {
        return vec![
            Say::Prompt(names::WAIT_IS_ABOUT),
            Say::Prompt(names::MORE_THAN),
            Say::Number(cap_minutes),
            Say::Prompt(if cap_minutes == 1 {
                names::MINUTE
            } else {
                names::MINUTES
            }),
        ];
    }
    let n = u32::try_from(minutes).unwrap_or(u32::MAX);
    vec![
        Say::Prompt(names::WAIT_IS_ABOUT),
        Say::Number(n),
        Say::Prompt(if n == 1 {
            names::MINUTE
        } else {
            names::MINUTES
        }),
    ]
}
