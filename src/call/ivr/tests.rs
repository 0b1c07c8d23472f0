//! Tests of the IVR: the call-target keys, the entry plan from real widget views, and every
//! path through the menu with a fake clock and exact action sequences.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

use super::config::{IvrMode, IvrSettings, NotOfferingMode};
use super::menu::{Action, Menu, RefusalKind, RegisterKind, RegisteredSummary, Step};
use super::plan::{entry, quote_wait, quoted_minutes, Entry, NotOffering, Offer, SlotChoice};
use crate::callback::config::CallbackSettings;
use crate::callback::engine::TargetView;
use crate::callback::hours::{BusinessHours, Span};
use crate::callback::model::{Kind, Refusal, WidgetState};
use crate::config::Config;
use crate::media::dtmf::Digit;
use crate::media::prompt::{names, Say};

// ------------------------------------------------------------------ helpers

/// A fake monotonic clock: starts at an arbitrary instant, moves only when told.
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }
    fn now(&self) -> Instant {
        self.0
    }
    fn advance(&mut self, secs: u64) -> Instant {
        self.0 += Duration::from_secs(secs);
        self.0
    }
}

fn p(name: &'static str) -> Say {
    Say::Prompt(name)
}

fn play(say: Vec<Say>) -> Action {
    Action::Play {
        say,
        barge_in: true,
    }
}

fn last(say: Vec<Say>) -> Action {
    Action::Play {
        say,
        barge_in: false,
    }
}

fn drain(m: &mut Menu) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn d(c: char) -> Digit {
    Digit::from_char(c).unwrap()
}

fn keys(m: &mut Menu, clock: &Clock, s: &str) {
    for c in s.chars() {
        m.handle_digit(clock.now(), d(c));
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn slot(start: &str, day_offset: u8, weekday: u8, hour: u8, minute: u8) -> SlotChoice {
    SlotChoice {
        start: utc(start),
        day_offset,
        weekday,
        hour,
        minute,
    }
}

/// A caller from +15551230000, a 7-minute wait, two slots, a contact center.
fn offer() -> Offer {
    Offer {
        ewt_secs: Some(7 * 60),
        next_day: false,
        slots: vec![
            slot("2026-01-14T16:00:00Z", 0, 2, 11, 0),
            slot("2026-01-15T14:30:00Z", 1, 3, 9, 30),
        ],
        can_hold: true,
        caller_number: Some("+15551230000".into()),
    }
}

fn menu_lines() -> Vec<Say> {
    vec![
        p(names::MENU_SAME_NUMBER),
        p(names::MENU_OTHER_NUMBER),
        p(names::MENU_SCHEDULED),
        p(names::MENU_HOLD),
    ]
}

fn greeting() -> Vec<Say> {
    let mut say = vec![
        p(names::WELCOME),
        p(names::WAIT_IS_ABOUT),
        Say::Number(7),
        p(names::MINUTES),
    ];
    say.extend(menu_lines());
    say
}

fn slot_lines() -> Vec<Say> {
    vec![
        p(names::SLOTS_INTRO),
        p(names::FOR),
        Say::Day {
            offset: 0,
            weekday: 2,
        },
        p(names::AT),
        Say::Time {
            hour: 11,
            minute: 0,
        },
        p(names::PRESS),
        Say::Number(1),
        p(names::FOR),
        Say::Day {
            offset: 1,
            weekday: 3,
        },
        p(names::AT),
        Say::Time {
            hour: 9,
            minute: 30,
        },
        p(names::PRESS),
        Say::Number(2),
        p(names::MENU_HOLD),
    ]
}

fn read_back(n: &str) -> Vec<Say> {
    vec![
        p(names::YOU_ENTERED),
        Say::Digits(n.into()),
        p(names::CONFIRM_NUMBER),
    ]
}

fn start(clock: &Clock, offer: Offer, settings: &IvrSettings) -> Menu {
    Menu::new(clock.now(), &Entry::Menu(offer), settings).unwrap()
}

/// A menu whose greeting has been polled and has played to its end.
fn listening(clock: &Clock) -> Menu {
    let mut m = start(clock, offer(), &IvrSettings::default());
    assert_eq!(drain(&mut m), [play(greeting())]);
    m.prompt_finished(clock.now());
    m
}

fn ok(id: &str, kind: Kind) -> Result<RegisteredSummary, RefusalKind> {
    Ok(RegisteredSummary {
        callback_id: id.into(),
        kind,
    })
}

// ------------------------------------------------------------------ the menu

#[test]
fn pressing_1_at_once_barges_in_and_registers_the_callers_number() {
    let mut clock = Clock::new();
    let mut m = start(&clock, offer(), &IvrSettings::default());
    assert_eq!(drain(&mut m), [play(greeting())]);
    // 1 while the greeting still plays.
    m.handle_digit(clock.advance(1), d('1'));
    assert_eq!(
        drain(&mut m),
        [
            Action::StopPlayback,
            Action::Register {
                number: None,
                kind: RegisterKind::Asap
            }
        ]
    );
    assert_eq!(m.poll_timeout(), None);
    // Keys while registering are ignored.
    m.handle_digit(clock.now(), d('2'));
    assert_eq!(drain(&mut m), []);
    m.registration_done(clock.advance(1), ok("cb1", Kind::Asap));
    assert_eq!(drain(&mut m), [last(vec![p(names::REGISTERED)])]);
    // The confirmation cannot be cut short.
    m.handle_digit(clock.now(), d('0'));
    assert_eq!(drain(&mut m), []);
    m.prompt_finished(clock.advance(4));
    assert_eq!(drain(&mut m), [Action::HangUp]);
    assert!(m.is_done());
    let o = m.outcome();
    assert_eq!(o.callback_id.as_deref(), Some("cb1"));
    assert_eq!(o.digits, "1");
    assert_eq!(o.path_label(), "offer>same_number>registered");
    assert!(!o.chose_to_hold && !o.early_hangup && !o.next_day_offered);
    // The BYE's answer after our HangUp is no early hangup.
    m.hangup(clock.now());
    assert!(!m.outcome().early_hangup);
}

#[test]
fn pressing_1_after_the_menu_has_nothing_to_stop() {
    let clock = Clock::new();
    let mut m = listening(&clock);
    assert_eq!(m.poll_timeout(), Some(clock.now() + Duration::from_secs(6)));
    m.handle_digit(clock.now(), d('1'));
    assert_eq!(
        drain(&mut m),
        [Action::Register {
            number: None,
            kind: RegisterKind::Asap
        }]
    );
}

#[test]
fn another_number_is_keyed_read_back_and_confirmed() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    m.handle_digit(clock.advance(2), d('2'));
    assert_eq!(drain(&mut m), [play(vec![p(names::ENTER_NUMBER)])]);
    m.prompt_finished(clock.advance(3));
    keys(&mut m, &clock, "5551234567");
    assert_eq!(drain(&mut m), []);
    m.handle_digit(clock.advance(1), d('#'));
    assert_eq!(drain(&mut m), [play(read_back("5551234567"))]);
    m.prompt_finished(clock.advance(5));
    m.handle_digit(clock.advance(1), d('1'));
    assert_eq!(
        drain(&mut m),
        [Action::Register {
            number: Some("5551234567".into()),
            kind: RegisterKind::Asap
        }]
    );
    m.registration_done(clock.now(), ok("cb2", Kind::Asap));
    assert_eq!(drain(&mut m), [last(vec![p(names::REGISTERED)])]);
    m.prompt_finished(clock.advance(4));
    assert_eq!(drain(&mut m), [Action::HangUp]);
    assert_eq!(m.outcome().digits, "25551234567#1");
    assert_eq!(
        m.outcome().path_label(),
        "offer>other_number>number_entered>confirmed>registered"
    );
}

#[test]
fn a_read_back_number_can_be_keyed_again_and_read_back_barged() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "2");
    drain(&mut m);
    m.prompt_finished(clock.advance(3));
    keys(&mut m, &clock, "555#");
    assert_eq!(drain(&mut m), [play(read_back("555"))]);
    // 2 during the read-back: stop it, ask again.
    m.handle_digit(clock.advance(1), d('2'));
    assert_eq!(
        drain(&mut m),
        [Action::StopPlayback, play(vec![p(names::ENTER_NUMBER)])]
    );
    m.prompt_finished(clock.advance(3));
    keys(&mut m, &clock, "5559876543#");
    assert_eq!(drain(&mut m), [play(read_back("5559876543"))]);
    m.prompt_finished(clock.advance(5));
    keys(&mut m, &clock, "1");
    assert_eq!(
        drain(&mut m),
        [Action::Register {
            number: Some("5559876543".into()),
            kind: RegisterKind::Asap
        }]
    );
    assert_eq!(
        m.outcome().path_label(),
        "offer>other_number>number_entered>reenter>number_entered>confirmed"
    );
}

#[test]
fn a_number_keyed_over_the_prompt_and_left_without_pound_is_taken_at_the_timeout() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "2");
    assert_eq!(drain(&mut m), [play(vec![p(names::ENTER_NUMBER)])]);
    // The first digit stops the prompt and is kept.
    keys(&mut m, &clock, "555");
    assert_eq!(drain(&mut m), [Action::StopPlayback]);
    assert_eq!(m.poll_timeout(), Some(clock.now() + Duration::from_secs(6)));
    // Each digit restarts the wait.
    clock.advance(5);
    keys(&mut m, &clock, "1234567");
    m.handle_timeout(clock.advance(5));
    assert_eq!(drain(&mut m), []);
    m.handle_timeout(clock.advance(1));
    assert_eq!(drain(&mut m), [play(read_back("5551234567"))]);
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn an_empty_number_is_invalid() {
    let clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "2");
    drain(&mut m);
    m.prompt_finished(clock.now());
    keys(&mut m, &clock, "#");
    assert_eq!(
        drain(&mut m),
        [play(vec![p(names::INVALID), p(names::ENTER_NUMBER)])]
    );
    // Silence after the prompt: asked once more (the miss count is shared), then goodbye.
    m.prompt_finished(clock.now());
    m.handle_timeout(clock.now() + Duration::from_secs(6));
    assert_eq!(drain(&mut m), [last(vec![p(names::NO_INPUT_GOODBYE)])]);
}

#[test]
fn a_scheduled_slot_is_read_out_and_picked() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "3");
    assert_eq!(drain(&mut m), [play(slot_lines())]);
    // 2 during the list: barge in, pick the second slot.
    m.handle_digit(clock.advance(4), d('2'));
    assert_eq!(
        drain(&mut m),
        [
            Action::StopPlayback,
            Action::Register {
                number: None,
                kind: RegisterKind::Scheduled(utc("2026-01-15T14:30:00Z"))
            }
        ]
    );
    m.registration_done(clock.now(), ok("cb3", Kind::Scheduled));
    assert_eq!(drain(&mut m), [last(vec![p(names::REGISTERED_SCHEDULED)])]);
    m.prompt_finished(clock.advance(4));
    assert_eq!(drain(&mut m), [Action::HangUp]);
    assert_eq!(
        m.outcome().path_label(),
        "offer>scheduled>slot_2>registered"
    );
}

#[test]
fn a_slot_number_not_read_out_is_invalid() {
    let clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "3");
    drain(&mut m);
    m.prompt_finished(clock.now());
    keys(&mut m, &clock, "3");
    let mut say = vec![p(names::INVALID)];
    say.extend(slot_lines());
    assert_eq!(drain(&mut m), [play(say)]);
    keys(&mut m, &clock, "0");
    assert_eq!(drain(&mut m), [Action::StopPlayback, Action::Bridge]);
    assert!(m.outcome().chose_to_hold);
}

#[test]
fn zero_and_star_keep_holding() {
    for key in ['0', '*'] {
        let clock = Clock::new();
        let mut m = start(&clock, offer(), &IvrSettings::default());
        drain(&mut m);
        m.handle_digit(clock.now(), d(key));
        assert_eq!(drain(&mut m), [Action::StopPlayback, Action::Bridge]);
        assert!(m.is_done());
        let o = m.outcome();
        assert!(o.chose_to_hold && o.bridged && !o.early_hangup);
        assert_eq!(o.path, [Step::Offer, Step::Hold]);
        assert_eq!(m.poll_timeout(), None);
    }
}

#[test]
fn an_invalid_key_says_so_and_plays_the_menu_again_then_ends() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "7");
    let mut again = vec![p(names::INVALID)];
    again.extend(menu_lines());
    assert_eq!(drain(&mut m), [play(again)]);
    m.prompt_finished(clock.advance(8));
    // Second miss with menu_retries = 1: a polite end.
    keys(&mut m, &clock, "#");
    assert_eq!(
        drain(&mut m),
        [last(vec![p(names::INVALID), p(names::GOODBYE)])]
    );
    assert_eq!(m.poll_timeout(), None);
    m.prompt_finished(clock.advance(3));
    assert_eq!(drain(&mut m), [Action::HangUp]);
    assert_eq!(m.outcome().path_label(), "offer>invalid>invalid");
    assert_eq!(m.outcome().digits, "7#");
}

#[test]
fn no_input_plays_the_menu_twice_then_says_goodbye() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    let due = clock.now() + Duration::from_secs(6);
    assert_eq!(m.poll_timeout(), Some(due));
    // Early calls do nothing.
    m.handle_timeout(clock.advance(5));
    assert_eq!(drain(&mut m), []);
    m.handle_timeout(clock.advance(1));
    assert_eq!(drain(&mut m), [play(menu_lines())]);
    assert_eq!(m.poll_timeout(), None, "no deadline while the prompt plays");
    m.prompt_finished(clock.advance(10));
    assert_eq!(m.poll_timeout(), Some(clock.now() + Duration::from_secs(6)));
    m.handle_timeout(clock.advance(6));
    assert_eq!(drain(&mut m), [last(vec![p(names::NO_INPUT_GOODBYE)])]);
    m.prompt_finished(clock.advance(3));
    assert_eq!(drain(&mut m), [Action::HangUp]);
    assert!(m.is_done());
    let o = m.outcome();
    assert_eq!(o.path, [Step::Offer, Step::NoInput, Step::NoInput]);
    assert!(!o.early_hangup && !o.chose_to_hold && o.callback_id.is_none());
}

#[test]
fn menu_retries_and_input_timeout_follow_the_settings() {
    let mut clock = Clock::new();
    let settings = IvrSettings {
        menu_retries: 0,
        input_timeout: Duration::from_secs(3),
        ..IvrSettings::default()
    };
    let mut m = start(&clock, offer(), &settings);
    drain(&mut m);
    m.prompt_finished(clock.now());
    assert_eq!(m.poll_timeout(), Some(clock.now() + Duration::from_secs(3)));
    m.handle_timeout(clock.advance(3));
    assert_eq!(drain(&mut m), [last(vec![p(names::NO_INPUT_GOODBYE)])]);
}

#[test]
fn a_valid_choice_starts_the_miss_count_again() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "9");
    drain(&mut m);
    m.prompt_finished(clock.now());
    keys(&mut m, &clock, "2");
    assert_eq!(drain(&mut m), [play(vec![p(names::ENTER_NUMBER)])]);
    m.prompt_finished(clock.now());
    m.handle_timeout(clock.advance(6));
    assert_eq!(drain(&mut m), [play(vec![p(names::ENTER_NUMBER)])]);
}

#[test]
fn a_duplicate_is_told_and_the_caller_may_keep_holding() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "1");
    drain(&mut m);
    m.registration_done(
        clock.now(),
        Err(RefusalKind::Refused(Refusal::DuplicateCallback)),
    );
    assert_eq!(
        drain(&mut m),
        [play(vec![p(names::DUPLICATE), p(names::MENU_HOLD)])]
    );
    m.handle_digit(clock.advance(2), d('0'));
    assert_eq!(drain(&mut m), [Action::StopPlayback, Action::Bridge]);
    let o = m.outcome();
    assert!(o.duplicate && o.chose_to_hold && o.callback_id.is_none());
    assert_eq!(
        o.refused,
        Some(RefusalKind::Refused(Refusal::DuplicateCallback))
    );
    assert_eq!(o.path_label(), "offer>same_number>refused>hold");
}

#[test]
fn a_refused_number_is_told_and_the_call_ends_after_the_timeout() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "2");
    drain(&mut m);
    m.prompt_finished(clock.now());
    keys(&mut m, &clock, "1900555#");
    drain(&mut m);
    m.prompt_finished(clock.now());
    keys(&mut m, &clock, "1");
    drain(&mut m);
    m.registration_done(
        clock.now(),
        Err(RefusalKind::Refused(Refusal::MaxTollRateExceeded)),
    );
    assert_eq!(
        drain(&mut m),
        [play(vec![p(names::NUMBER_REFUSED), p(names::MENU_HOLD)])]
    );
    m.prompt_finished(clock.advance(4));
    m.handle_timeout(clock.advance(6));
    assert_eq!(drain(&mut m), [last(vec![p(names::GOODBYE)])]);
    m.prompt_finished(clock.advance(1));
    assert_eq!(drain(&mut m), [Action::HangUp]);
    assert!(!m.outcome().duplicate && !m.outcome().chose_to_hold);
}

#[test]
fn other_refusals_and_an_unavailable_service_say_registration_failed() {
    for why in [
        RefusalKind::Refused(Refusal::MaxRequestedExceeded),
        RefusalKind::Unavailable,
    ] {
        let clock = Clock::new();
        let mut m = listening(&clock);
        keys(&mut m, &clock, "1");
        drain(&mut m);
        m.registration_done(clock.now(), Err(why));
        assert_eq!(
            drain(&mut m),
            [play(vec![
                p(names::REGISTRATION_FAILED),
                p(names::MENU_HOLD)
            ])]
        );
        // Anything but 0 / * here is invalid.
        m.prompt_finished(clock.now());
        keys(&mut m, &clock, "1");
        assert_eq!(
            drain(&mut m),
            [play(vec![p(names::INVALID), p(names::MENU_HOLD)])]
        );
    }
}

#[test]
fn a_refusal_without_a_contact_center_says_goodbye() {
    let clock = Clock::new();
    let o = Offer {
        can_hold: false,
        ..offer()
    };
    let mut m = start(&clock, o, &IvrSettings::default());
    drain(&mut m);
    keys(&mut m, &clock, "1");
    drain(&mut m);
    m.registration_done(
        clock.now(),
        Err(RefusalKind::Refused(Refusal::InvalidNumber)),
    );
    assert_eq!(
        drain(&mut m),
        [last(vec![p(names::NUMBER_REFUSED), p(names::GOODBYE)])]
    );
    m.prompt_finished(clock.now());
    assert_eq!(drain(&mut m), [Action::HangUp]);
}

#[test]
fn a_hangup_in_the_menu_is_an_early_hangup_and_registers_nothing() {
    let mut clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "2");
    drain(&mut m);
    m.prompt_finished(clock.now());
    keys(&mut m, &clock, "555");
    m.hangup(clock.advance(2));
    assert!(m.is_done());
    assert_eq!(m.poll_timeout(), None);
    // Nothing after the hangup acts.
    keys(&mut m, &clock, "#1");
    m.prompt_finished(clock.now());
    m.handle_timeout(clock.advance(60));
    assert_eq!(drain(&mut m), []);
    let o = m.outcome();
    assert!(o.early_hangup && o.callback_id.is_none());
    assert_eq!(o.digits, "2555");
    assert_eq!(o.path_label(), "offer>other_number>hung_up");
}

#[test]
fn a_hangup_while_the_greeting_plays_drops_unpolled_actions() {
    let clock = Clock::new();
    let mut m = start(&clock, offer(), &IvrSettings::default());
    m.hangup(clock.now());
    assert_eq!(drain(&mut m), []);
    assert!(m.outcome().early_hangup);
}

#[test]
fn a_hangup_with_the_registration_in_flight_lets_it_stand() {
    let clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "1");
    drain(&mut m);
    m.hangup(clock.now());
    assert!(!m.is_done(), "the registration's result is still to come");
    m.registration_done(clock.now(), ok("cb9", Kind::Asap));
    assert_eq!(drain(&mut m), [], "nobody to play to");
    assert!(m.is_done());
    let o = m.outcome();
    assert!(!o.early_hangup && o.hung_up_registering);
    assert_eq!(o.callback_id.as_deref(), Some("cb9"));
    assert_eq!(o.path_label(), "offer>same_number>hung_up>registered");
}

#[test]
fn a_hangup_during_the_confirmation_is_no_early_hangup() {
    let clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "1");
    drain(&mut m);
    m.registration_done(clock.now(), ok("cb1", Kind::Asap));
    drain(&mut m);
    m.hangup(clock.now());
    m.prompt_finished(clock.now());
    assert_eq!(drain(&mut m), []);
    assert!(m.is_done());
    assert!(!m.outcome().early_hangup);
    assert_eq!(m.outcome().callback_id.as_deref(), Some("cb1"));
}

#[test]
fn a_late_or_stray_registration_result_is_ignored() {
    let clock = Clock::new();
    let mut m = listening(&clock);
    m.registration_done(clock.now(), ok("cbX", Kind::Asap));
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.outcome().callback_id, None);
}

#[test]
fn the_next_day_menu_registers_a_next_day_callback() {
    let mut clock = Clock::new();
    let o = Offer {
        ewt_secs: Some(15 * 3600),
        next_day: true,
        slots: vec![],
        ..offer()
    };
    let mut m = start(&clock, o, &IvrSettings::default());
    assert_eq!(
        drain(&mut m),
        [play(vec![
            p(names::WELCOME),
            p(names::MENU_NEXT_DAY),
            p(names::MENU_OTHER_NUMBER),
            p(names::MENU_HOLD),
        ])]
    );
    assert!(m.outcome().next_day_offered);
    m.prompt_finished(clock.advance(8));
    // No slots: 3 is invalid.
    keys(&mut m, &clock, "3");
    assert_eq!(
        drain(&mut m),
        [play(vec![
            p(names::INVALID),
            p(names::MENU_NEXT_DAY),
            p(names::MENU_OTHER_NUMBER),
            p(names::MENU_HOLD),
        ])]
    );
    keys(&mut m, &clock, "1");
    assert_eq!(
        drain(&mut m),
        [
            Action::StopPlayback,
            Action::Register {
                number: None,
                kind: RegisterKind::NextDay
            }
        ]
    );
    m.registration_done(clock.now(), ok("cbN", Kind::NextDay));
    assert_eq!(drain(&mut m), [last(vec![p(names::REGISTERED_NEXT_DAY)])]);
    let o = m.outcome();
    assert!(o.next_day_offered && o.next_day_scheduled);
    assert_eq!(
        o.path_label(),
        "next_day_offer>invalid>same_number>registered"
    );
}

#[test]
fn another_number_in_the_next_day_menu_is_a_next_day_callback() {
    let clock = Clock::new();
    let o = Offer {
        next_day: true,
        ..offer()
    };
    let mut m = start(&clock, o, &IvrSettings::default());
    drain(&mut m);
    keys(&mut m, &clock, "2");
    drain(&mut m);
    keys(&mut m, &clock, "5551234567#1");
    assert_eq!(
        drain(&mut m).last(),
        Some(&Action::Register {
            number: Some("5551234567".into()),
            kind: RegisterKind::NextDay
        })
    );
}

#[test]
fn an_anonymous_caller_hears_only_what_can_be_done() {
    let clock = Clock::new();
    let o = Offer {
        caller_number: None,
        slots: vec![],
        can_hold: false,
        ewt_secs: Some(20),
        ..offer()
    };
    let mut m = start(&clock, o, &IvrSettings::default());
    assert_eq!(
        drain(&mut m),
        [play(vec![
            p(names::WELCOME),
            p(names::WAIT_IS_ABOUT),
            Say::Number(1),
            p(names::MINUTE),
            p(names::MENU_OTHER_NUMBER),
        ])]
    );
    for k in ['1', '3', '0'] {
        m.handle_digit(clock.now(), d(k));
    }
    // 1 stopped the greeting and was invalid; 3 invalid again: goodbye; 0 ignored.
    assert_eq!(
        drain(&mut m),
        [
            Action::StopPlayback,
            play(vec![p(names::INVALID), p(names::MENU_OTHER_NUMBER)]),
            Action::StopPlayback,
            last(vec![p(names::INVALID), p(names::GOODBYE)]),
        ]
    );
    assert!(!m.outcome().chose_to_hold);
}

#[test]
fn too_many_digits_are_invalid() {
    let clock = Clock::new();
    let mut m = listening(&clock);
    keys(&mut m, &clock, "2");
    drain(&mut m);
    m.prompt_finished(clock.now());
    keys(&mut m, &clock, &"5".repeat(21));
    assert_eq!(
        drain(&mut m),
        [play(vec![p(names::INVALID), p(names::ENTER_NUMBER)])]
    );
}

#[test]
fn ivr_none_registers_at_once_and_confirms() {
    let clock = Clock::new();
    let e = Entry::RegisterAtOnce {
        number: "+15551230000".into(),
        next_day: false,
        can_hold: true,
    };
    let mut m = Menu::new(clock.now(), &e, &IvrSettings::default()).unwrap();
    assert_eq!(
        drain(&mut m),
        [Action::Register {
            number: None,
            kind: RegisterKind::Asap
        }]
    );
    m.registration_done(clock.now(), ok("cbA", Kind::Asap));
    assert_eq!(drain(&mut m), [last(vec![p(names::REGISTERED)])]);
    m.prompt_finished(clock.now());
    assert_eq!(drain(&mut m), [Action::HangUp]);
    assert_eq!(m.outcome().path_label(), "at_once>registered");
    assert_eq!(m.outcome().digits, "");
}

#[test]
fn ivr_none_next_day_and_refused() {
    let clock = Clock::new();
    let e = Entry::RegisterAtOnce {
        number: "+15551230000".into(),
        next_day: true,
        can_hold: true,
    };
    let mut m = Menu::new(clock.now(), &e, &IvrSettings::default()).unwrap();
    assert_eq!(
        drain(&mut m),
        [Action::Register {
            number: None,
            kind: RegisterKind::NextDay
        }]
    );
    assert!(m.outcome().next_day_offered);
    m.registration_done(
        clock.now(),
        Err(RefusalKind::Refused(Refusal::DuplicateCallback)),
    );
    assert_eq!(
        drain(&mut m),
        [play(vec![p(names::DUPLICATE), p(names::MENU_HOLD)])]
    );
    keys(&mut m, &clock, "*");
    assert_eq!(drain(&mut m), [Action::StopPlayback, Action::Bridge]);
}

#[test]
fn not_offering_entries_drive_the_menu() {
    let clock = Clock::new();
    let s = IvrSettings::default();
    // Straight bridge.
    let e = Entry::NotOffering {
        reason: WidgetState::PlatformUnavailable,
        then: NotOffering::Bridge { announce: vec![] },
    };
    let mut m = Menu::new(clock.now(), &e, &s).unwrap();
    assert_eq!(drain(&mut m), [Action::Bridge]);
    assert!(m.is_done());
    let o = m.outcome();
    assert!(o.bridged && !o.chose_to_hold);
    assert_eq!(o.not_offering, Some(WidgetState::PlatformUnavailable));
    // Announce the wait, then bridge.
    let say = vec![
        p(names::WAIT_IS_ABOUT),
        Say::Number(5),
        p(names::MINUTES),
        p(names::CONNECTING),
    ];
    let e = Entry::NotOffering {
        reason: WidgetState::DisplayEwtOnly,
        then: NotOffering::Bridge {
            announce: say.clone(),
        },
    };
    let mut m = Menu::new(clock.now(), &e, &s).unwrap();
    assert_eq!(drain(&mut m), [last(say)]);
    m.handle_digit(clock.now(), d('1'));
    assert_eq!(drain(&mut m), []);
    m.prompt_finished(clock.now());
    assert_eq!(drain(&mut m), [Action::Bridge]);
    assert!(!m.outcome().chose_to_hold && m.outcome().bridged);
    // Announce and hang up.
    let e = Entry::NotOffering {
        reason: WidgetState::PlatformUnavailable,
        then: NotOffering::Announce(names::CLOSED),
    };
    let mut m = Menu::new(clock.now(), &e, &s).unwrap();
    assert_eq!(drain(&mut m), [last(vec![p(names::CLOSED)])]);
    m.hangup(clock.now());
    assert!(m.is_done() && !m.outcome().early_hangup);
    // Reject: no conversation.
    let e = Entry::NotOffering {
        reason: WidgetState::PlatformUnavailable,
        then: NotOffering::Reject(486),
    };
    assert!(Menu::new(clock.now(), &e, &s).is_none());
}

// ------------------------------------------------------------------ the quoted wait

#[test]
fn the_wait_is_quoted_in_rounded_minutes_up_to_the_cap() {
    assert_eq!(quoted_minutes(0), 1);
    assert_eq!(quoted_minutes(29), 1);
    assert_eq!(quoted_minutes(89), 1);
    assert_eq!(quoted_minutes(90), 2);
    assert_eq!(quoted_minutes(149), 2);
    assert_eq!(quoted_minutes(150), 3);
    assert_eq!(quoted_minutes(u64::MAX), u64::MAX / 60);
    assert_eq!(
        quote_wait(0, 60),
        [p(names::WAIT_IS_ABOUT), Say::Number(1), p(names::MINUTE)]
    );
    assert_eq!(
        quote_wait(60 * 60 + 29, 60),
        [p(names::WAIT_IS_ABOUT), Say::Number(60), p(names::MINUTES)]
    );
    assert_eq!(
        quote_wait(60 * 60 + 30, 60),
        [
            p(names::WAIT_IS_ABOUT),
            p(names::MORE_THAN),
            Say::Number(60),
            p(names::MINUTES)
        ]
    );
    assert_eq!(
        quote_wait(u64::MAX, 1),
        [
            p(names::WAIT_IS_ABOUT),
            p(names::MORE_THAN),
            Say::Number(1),
            p(names::MINUTE)
        ]
    );
}

#[test]
fn the_greeting_quotes_the_cap() {
    let clock = Clock::new();
    let o = Offer {
        ewt_secs: Some(3 * 3600),
        ..offer()
    };
    let s = IvrSettings {
        max_quoted_minutes: 45,
        ..IvrSettings::default()
    };
    let mut m = start(&clock, o, &s);
    let mut want = vec![
        p(names::WELCOME),
        p(names::WAIT_IS_ABOUT),
        p(names::MORE_THAN),
        Say::Number(45),
        p(names::MINUTES),
    ];
    want.extend(menu_lines());
    assert_eq!(drain(&mut m), [play(want)]);
}

// ------------------------------------------------------------------ the entry plan

fn view(state: WidgetState, ewt: Option<u64>, slots: &[&str]) -> TargetView {
    TargetView {
        state,
        offer_asap: state.offers_callback(),
        offer_scheduled: !slots.is_empty(),
        ewt,
        timeslots: slots.iter().map(|s| utc(s)).collect(),
    }
}

/// Mon-Fri 09:00-17:00 New York, a contact center.
fn target() -> CallbackSettings {
    let d = vec![Span::parse("09:00-17:00").unwrap()];
    CallbackSettings {
        contact_center: Some("sip:+15550009999@127.0.0.1:5090".into()),
        hours: BusinessHours::new(
            "America/New_York".parse().unwrap(),
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
        ),
        ..CallbackSettings::default()
    }
}

/// Wednesday 14 January 2026, 10:00 in New York.
fn open_now() -> DateTime<Utc> {
    utc("2026-01-14T15:00:00Z")
}

#[test]
fn offering_states_give_the_menu_with_local_slots() {
    let v = view(
        WidgetState::OfferCallback,
        Some(400),
        &[
            "2026-01-14T16:00:00Z",
            "2026-01-15T14:30:00Z",
            "2026-01-19T14:00:00Z",
            "2026-01-19T14:30:00Z",
        ],
    );
    let e = entry(
        open_now(),
        &v,
        &target(),
        &IvrSettings::default(),
        Some("+15551230000"),
    );
    assert_eq!(
        e,
        Entry::Menu(Offer {
            ewt_secs: Some(400),
            next_day: false,
            slots: vec![
                slot("2026-01-14T16:00:00Z", 0, 2, 11, 0),
                slot("2026-01-15T14:30:00Z", 1, 3, 9, 30),
                slot("2026-01-19T14:00:00Z", 5, 0, 9, 0),
            ],
            can_hold: true,
            caller_number: Some("+15551230000".into()),
        })
    );
    // Anonymous: no slots (no number to book them for), no own number.
    let e = entry(
        open_now(),
        &v,
        &target(),
        &IvrSettings::default(),
        Some(" "),
    );
    let Entry::Menu(o) = e else { panic!("{e:?}") };
    assert!(o.slots.is_empty() && o.caller_number.is_none());
    // No contact center: no holding.
    let t = CallbackSettings {
        contact_center: None,
        ..target()
    };
    let v = view(WidgetState::OfferAsapCallback, Some(60), &[]);
    let e = entry(open_now(), &v, &t, &IvrSettings::default(), Some("+1555"));
    let Entry::Menu(o) = e else { panic!("{e:?}") };
    assert!(!o.can_hold && !o.next_day);
}

#[test]
fn an_asap_offer_while_closed_or_past_closing_is_next_day() {
    let v = view(WidgetState::OfferAsapCallback, Some(20 * 3600), &[]);
    let s = IvrSettings::default();
    // Saturday: closed.
    let e = entry(
        utc("2026-01-17T15:00:00Z"),
        &v,
        &target(),
        &s,
        Some("+1555"),
    );
    assert!(
        matches!(e, Entry::Menu(Offer { next_day: true, .. })),
        "{e:?}"
    );
    // Wednesday 16:50 local with a 20-minute wait: launches after closing.
    let v = view(WidgetState::OfferAsapCallback, Some(20 * 60), &[]);
    let e = entry(
        utc("2026-01-14T21:50:00Z"),
        &v,
        &target(),
        &s,
        Some("+1555"),
    );
    assert!(
        matches!(e, Entry::Menu(Offer { next_day: true, .. })),
        "{e:?}"
    );
    // 16:30 local with a 20-minute wait: today.
    let e = entry(
        utc("2026-01-14T21:30:00Z"),
        &v,
        &target(),
        &s,
        Some("+1555"),
    );
    assert!(
        matches!(
            e,
            Entry::Menu(Offer {
                next_day: false,
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn ivr_none_registers_at_once_unless_the_number_is_unknown() {
    let s = IvrSettings {
        mode: IvrMode::None,
        ..IvrSettings::default()
    };
    let v = view(WidgetState::OfferAsapCallback, Some(60), &[]);
    assert_eq!(
        entry(open_now(), &v, &target(), &s, Some("+15551230000")),
        Entry::RegisterAtOnce {
            number: "+15551230000".into(),
            next_day: false,
            can_hold: true
        }
    );
    assert!(matches!(
        entry(open_now(), &v, &target(), &s, None),
        Entry::Menu(_)
    ));
    // Not offering wins over ivr = none.
    let v = view(WidgetState::PlatformUnavailable, None, &[]);
    assert!(matches!(
        entry(open_now(), &v, &target(), &s, Some("+1555")),
        Entry::NotOffering { .. }
    ));
}

#[test]
fn every_not_offering_state_and_mode() {
    let bridge = IvrSettings::default();
    let announce = IvrSettings {
        not_offering: NotOfferingMode::Announce,
        ..IvrSettings::default()
    };
    let reject = IvrSettings {
        not_offering: NotOfferingMode::Reject,
        reject_status: 486,
        ..IvrSettings::default()
    };
    let saturday = utc("2026-01-17T15:00:00Z");
    let n = Some("+15551230000");
    let not = |reason, then| Entry::NotOffering { reason, then };
    let no_announce = NotOffering::Bridge { announce: vec![] };

    // display_ewt_only, wait above max_ecbt (3600 s): quote it, then bridge; or announce.
    let v = view(WidgetState::DisplayEwtOnly, Some(5000), &[]);
    let mut quoted = vec![
        p(names::WAIT_IS_ABOUT),
        p(names::MORE_THAN),
        Say::Number(60),
        p(names::MINUTES),
    ];
    quoted.push(p(names::CONNECTING));
    assert_eq!(
        entry(open_now(), &v, &target(), &bridge, n),
        not(
            WidgetState::DisplayEwtOnly,
            NotOffering::Bridge { announce: quoted }
        )
    );
    assert_eq!(
        entry(open_now(), &v, &target(), &announce, n),
        not(
            WidgetState::DisplayEwtOnly,
            NotOffering::Announce(names::WAIT_TOO_LONG)
        )
    );
    assert_eq!(
        entry(open_now(), &v, &target(), &reject, n),
        not(WidgetState::DisplayEwtOnly, NotOffering::Reject(486))
    );
    // display_ewt_only with the queue full (wait below the maximum) and no wait known.
    let v = view(WidgetState::DisplayEwtOnly, Some(300), &[]);
    assert_eq!(
        entry(open_now(), &v, &target(), &announce, n),
        not(
            WidgetState::DisplayEwtOnly,
            NotOffering::Announce(names::UNAVAILABLE)
        )
    );
    let v = view(WidgetState::DisplayEwtOnly, None, &[]);
    assert_eq!(
        entry(open_now(), &v, &target(), &bridge, n),
        not(WidgetState::DisplayEwtOnly, no_announce.clone())
    );
    // offer_scheduled_callback (ASAP refused, slots left): not offered either.
    let v = view(
        WidgetState::OfferScheduledCallback,
        Some(5000),
        &["2026-01-14T16:00:00Z"],
    );
    assert_eq!(
        entry(open_now(), &v, &target(), &bridge, n),
        not(
            WidgetState::OfferScheduledCallback,
            NotOffering::Bridge { announce: vec![] }
        )
    );
    assert_eq!(
        entry(open_now(), &v, &target(), &announce, n),
        not(
            WidgetState::OfferScheduledCallback,
            NotOffering::Announce(names::WAIT_TOO_LONG)
        )
    );
    // platform_unavailable: closed, or disabled / store down.
    let v = view(WidgetState::PlatformUnavailable, None, &[]);
    assert_eq!(
        entry(saturday, &v, &target(), &announce, n),
        not(
            WidgetState::PlatformUnavailable,
            NotOffering::Announce(names::CLOSED)
        )
    );
    assert_eq!(
        entry(open_now(), &v, &target(), &announce, n),
        not(
            WidgetState::PlatformUnavailable,
            NotOffering::Announce(names::UNAVAILABLE)
        )
    );
    let disabled = CallbackSettings {
        enabled: false,
        ..target()
    };
    assert_eq!(
        entry(saturday, &v, &disabled, &announce, n),
        not(
            WidgetState::PlatformUnavailable,
            NotOffering::Announce(names::UNAVAILABLE)
        )
    );
    assert_eq!(
        entry(saturday, &v, &target(), &bridge, n),
        not(WidgetState::PlatformUnavailable, no_announce)
    );
    // bridge without a contact center: announce instead.
    let no_cc = CallbackSettings {
        contact_center: None,
        ..target()
    };
    assert_eq!(
        entry(saturday, &v, &no_cc, &bridge, n),
        not(
            WidgetState::PlatformUnavailable,
            NotOffering::Announce(names::CLOSED)
        )
    );
}

#[test]
fn the_plan_uses_the_engines_own_view() {
    // A real engine's view, closed on Saturday with next-day callbacks on: the menu with
    // the next-day offer.
    use crate::callback::engine::{Engine, TargetConfig};
    let mut settings = target();
    settings.next_day.enabled = true;
    let engine = Engine::new(
        vec![TargetConfig {
            id: "billing".into(),
            name: "Billing".into(),
            settings: settings.clone(),
        }],
        7,
    );
    let now = Utc.with_ymd_and_hms(2026, 1, 17, 15, 0, 0).unwrap();
    let v = engine.target_view(now, "billing", true);
    assert_eq!(v.state, WidgetState::OfferAsapCallback);
    let e = entry(now, &v, &settings, &IvrSettings::default(), Some("+1555"));
    assert!(
        matches!(e, Entry::Menu(Offer { next_day: true, .. })),
        "{e:?}"
    );
    // Open on Wednesday: today's ASAP callback.
    let v = engine.target_view(open_now(), "billing", true);
    let e = entry(
        open_now(),
        &v,
        &settings,
        &IvrSettings::default(),
        Some("+1555"),
    );
    assert!(
        matches!(
            e,
            Entry::Menu(Offer {
                next_day: false,
                ..
            })
        ),
        "{e:?}"
    );
}

// ------------------------------------------------------------------ configuration

const CONFIG: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
[[call_targets]]
id = "sales"
name = "Sales"
numbers = ["+15550002000"]
[[call_targets]]
id = "support"
name = "Support"
numbers = ["+15550003000"]
"#;

/// CONFIG with `keys` added to the third call target.
fn third(keys: &str) -> String {
    format!("{CONFIG}{keys}\n")
}

#[test]
fn ivr_keys_default_and_parse() {
    let c = Config::parse(CONFIG).unwrap();
    assert_eq!(c.call_targets[2].ivr, IvrSettings::default());
    let d = IvrSettings::default();
    assert_eq!(
        (d.reject_status, d.input_timeout, d.max_quoted_minutes),
        (480, Duration::from_secs(6), 60)
    );
    assert_eq!(
        (d.prompts.to_str(), d.menu_retries, d.mode, d.not_offering),
        (
            Some("configs/prompts"),
            1,
            IvrMode::Menu,
            NotOfferingMode::Bridge
        )
    );
    let c = Config::parse(&third(
        "ivr = \"none\"\nnot_offering = \"reject\"\nreject_status = 603\n\
         input_timeout_secs = 10\nmax_quoted_minutes = 30\nprompts = \"/srv/prompts\"\n\
         menu_retries = 2",
    ))
    .unwrap();
    assert_eq!(
        c.call_targets[2].ivr,
        IvrSettings {
            mode: IvrMode::None,
            not_offering: NotOfferingMode::Reject,
            reject_status: 603,
            input_timeout: Duration::from_secs(10),
            max_quoted_minutes: 30,
            prompts: "/srv/prompts".into(),
            menu_retries: 2,
        }
    );
    assert_eq!(c.call_targets[0].ivr, IvrSettings::default());
    let c = Config::parse(&third("not_offering = \"announce\"")).unwrap();
    assert_eq!(
        c.call_targets[2].ivr.not_offering,
        NotOfferingMode::Announce
    );
}

#[test]
fn bad_ivr_keys_are_named() {
    for (keys, key, says) in [
        ("ivr = \"dtmf\"", "ivr", "must be \"menu\" or \"none\""),
        (
            "not_offering = \"drop\"",
            "not_offering",
            "must be \"bridge\", \"announce\" or \"reject\"",
        ),
        ("reject_status = 200", "reject_status", "400-699"),
        ("reject_status = 700", "reject_status", "400-699"),
        ("input_timeout_secs = 0", "input_timeout_secs", "1-60"),
        ("input_timeout_secs = 61", "input_timeout_secs", "1-60"),
        ("max_quoted_minutes = 0", "max_quoted_minutes", "1-1440"),
        ("prompts = \" \"", "prompts", "folder"),
        ("menu_retries = 6", "menu_retries", "at most 5"),
    ] {
        let errs = Config::parse(&third(keys)).unwrap_err();
        assert_eq!(errs.len(), 1, "{keys}: {errs:?}");
        assert_eq!(errs[0].key, format!("call_targets[2].{key}"), "{keys}");
        assert!(errs[0].message.contains(says), "{keys}: {errs:?}");
    }
    // A value of the wrong type is named by the reader.
    let errs = Config::parse(&third("reject_status = \"busy\"")).unwrap_err();
    assert_eq!(errs[0].key, "call_targets[2].reject_status", "{errs:?}");
    // Every bad key at once.
    let errs = Config::parse(&third("ivr = \"x\"\nmenu_retries = 9")).unwrap_err();
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["call_targets[2].ivr", "call_targets[2].menu_retries"]
    );
}

#[test]
fn the_example_configuration_sets_the_defaults_explicitly() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/holdless.toml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let billing = c.call_targets.iter().find(|t| t.id == "billing").unwrap();
    assert_eq!(billing.ivr, IvrSettings::default());
}
