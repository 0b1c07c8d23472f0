//! Engine tests: every registration rule, queueing, pacing, retries, ECBT, punctuality,
//! widget states and restore, with a fake clock (plain `DateTime` values) and no IO.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::callback::config::Retry;
use crate::callback::hours::{BusinessHours, Span};
use crate::callback::model::AttemptResult;
use crate::callback::number::{CountryRule, NumberRules, Rate};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Wednesday 14 January 2026, 10:00 UTC.
fn t0() -> DateTime<Utc> {
    utc("2026-01-14T10:00:00Z")
}

fn weekdays(tz: &str, span: &str) -> BusinessHours {
    let d = vec![Span::parse(span).unwrap()];
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

fn settings() -> CallbackSettings {
    let mut s = CallbackSettings {
        organization: Some("acme".into()),
        contact_center: Some("sip:+15550009999@127.0.0.1:5090".into()),
        pacing: 2,
        ..CallbackSettings::default()
    };
    s.numbers = NumberRules {
        allowed: vec![
            CountryRule {
                cc: "1".into(),
                lengths: vec![10],
            },
            CountryRule {
                cc: "44".into(),
                lengths: vec![10],
            },
        ],
        default_country: Some("1".into()),
        blocked: vec!["+1900".into()],
        rates: vec![("+1".into(), Rate(10_000)), ("+44".into(), Rate(90_000))],
        max_rate: Some(Rate(50_000)),
    };
    s.hours = weekdays("UTC", "09:00-17:00");
    s
}

fn target(id: &str, s: CallbackSettings) -> TargetConfig {
    TargetConfig {
        id: id.into(),
        name: id.to_uppercase(),
        settings: s,
    }
}

fn engine(s: CallbackSettings) -> Engine {
    let mut e = Engine::new(vec![target("billing", s)], 7);
    e.set_dialling(true);
    e
}

fn req(number: &str) -> RegisterRequest {
    RegisterRequest {
        call_target: "billing".into(),
        number: number.into(),
        source: Some(Source::Api),
        ..RegisterRequest::default()
    }
}

fn num(i: u32) -> String {
    format!("+1555000{i:04}")
}

fn writes(e: &mut Engine) -> Vec<Write> {
    std::iter::from_fn(|| e.poll_write()).collect()
}

fn launches(e: &mut Engine, now: DateTime<Utc>) -> Vec<Launch> {
    std::iter::from_fn(|| e.poll_launch(now)).collect()
}

fn refusal(e: &mut Engine, now: DateTime<Utc>, r: RegisterRequest) -> Refusal {
    e.handle_register(now, r).unwrap_err().outcome
}

#[test]
fn an_asap_registration_is_queued_and_written() {
    let mut e = engine(settings());
    let mut r = req("(555) 000-0001");
    r.user_data.insert("account".into(), "42".into());
    r.sip_headers = vec![("X-User-To-User".into(), "abc".into())];
    let reg = e.handle_register(t0(), r).unwrap();
    let cb = &reg.callback;
    assert_eq!(cb.number, "+15550000001");
    assert_eq!((cb.kind, cb.status), (Kind::Asap, Status::Pending));
    assert_eq!(cb.organization, "acme");
    assert_eq!(reg.position, 1);
    assert_eq!(cb.ecbt_secs, 0, "free pacing slots: no wait");
    assert_eq!(cb.estimated_for, t0());
    assert_eq!(cb.id.len(), 32);
    let w = writes(&mut e);
    assert!(
        matches!(&w[..], [Write::Callback(c)] if c.id == cb.id && c.user_data["account"] == "42")
    );
}

#[test]
fn refusal_rules_each_give_their_outcome_and_are_recorded() {
    let mut s = settings();
    s.max_requested = 3;
    let mut e = engine(s);
    assert_eq!(
        refusal(&mut e, t0(), req("not a number")),
        Refusal::InvalidNumber
    );
    assert_eq!(
        refusal(&mut e, t0(), req("+4930123456")),
        Refusal::InvalidNumber
    );
    assert_eq!(
        refusal(&mut e, t0(), req("+19005550000")),
        Refusal::MaxTollRateExceeded
    );
    assert_eq!(
        refusal(&mut e, t0(), req("+442071234567")),
        Refusal::MaxTollRateExceeded
    );
    e.handle_register(t0(), req(&num(1))).unwrap();
    // The same number moments later: a repeat of a request still being processed
    // (Mindful's DuplicateRequest); from 10 s on, a duplicate callback.
    let soon = t0() + Duration::seconds(DUPLICATE_REQUEST_WINDOW_SECS - 1);
    assert_eq!(
        refusal(&mut e, soon, req(&num(1))),
        Refusal::DuplicateRequest
    );
    let later = t0() + Duration::seconds(DUPLICATE_REQUEST_WINDOW_SECS);
    assert_eq!(
        refusal(&mut e, later, req("555 000 0001")),
        Refusal::DuplicateCallback
    );
    e.handle_register(t0(), req(&num(2))).unwrap();
    e.handle_register(t0(), req(&num(3))).unwrap();
    assert_eq!(
        refusal(&mut e, t0(), req(&num(4))),
        Refusal::MaxRequestedExceeded
    );
    let mut other = req(&num(5));
    other.call_target = "nope".into();
    assert_eq!(refusal(&mut e, t0(), other), Refusal::UnknownTarget);
    let recorded: Vec<Refusal> = writes(&mut e)
        .into_iter()
        .filter_map(|w| match w {
            Write::Refusal(r) => Some(r.outcome),
            _ => None,
        })
        .collect();
    assert_eq!(
        recorded,
        [
            Refusal::InvalidNumber,
            Refusal::InvalidNumber,
            Refusal::MaxTollRateExceeded,
            Refusal::MaxTollRateExceeded,
            Refusal::DuplicateRequest,
            Refusal::DuplicateCallback,
            Refusal::MaxRequestedExceeded,
            Refusal::UnknownTarget,
        ]
    );
}

#[test]
fn a_disabled_target_refuses_and_shows_platform_unavailable() {
    let mut s = settings();
    s.enabled = false;
    let mut e = engine(s);
    assert_eq!(refusal(&mut e, t0(), req(&num(1))), Refusal::TargetDisabled);
    assert_eq!(
        e.target_view(t0(), "billing", true).state,
        WidgetState::PlatformUnavailable
    );
}

#[test]
fn the_same_number_may_wait_on_two_call_targets() {
    let mut e = Engine::new(
        vec![target("billing", settings()), target("sales", settings())],
        1,
    );
    e.handle_register(t0(), req(&num(1))).unwrap();
    let mut r = req(&num(1));
    r.call_target = "sales".into();
    assert!(e.handle_register(t0(), r).is_ok());
}

#[test]
fn outside_hours_refuses_without_next_day_offers() {
    let mut e = engine(settings());
    let evening = utc("2026-01-14T18:00:00Z");
    assert_eq!(
        refusal(&mut e, evening, req(&num(1))),
        Refusal::OutsideHours
    );
    let v = e.target_view(evening, "billing", true);
    assert_eq!(v.state, WidgetState::PlatformUnavailable);
    assert_eq!(v.ewt, None);
}

#[test]
fn next_business_day_callbacks_when_closed_with_cap_and_delay() {
    let mut s = settings();
    s.next_day.enabled = true;
    s.next_day.max = 2;
    s.next_day.delay_secs = 600;
    let mut e = engine(s);
    let friday_evening = utc("2026-01-16T18:00:00Z");
    let reg = e.handle_register(friday_evening, req(&num(1))).unwrap();
    let cb = reg.callback;
    assert_eq!((cb.kind, cb.status), (Kind::NextDay, Status::Waitlisted));
    // Monday 09:00 + 10 minutes.
    assert_eq!(cb.due_at, utc("2026-01-19T09:10:00Z"));
    assert_eq!(cb.estimated_for, utc("2026-01-19T09:10:00Z"));
    let v = e.target_view(friday_evening, "billing", true);
    assert_eq!(v.state, WidgetState::OfferAsapCallback);
    e.handle_register(friday_evening, req(&num(2))).unwrap();
    assert_eq!(
        refusal(&mut e, friday_evening, req(&num(3))),
        Refusal::MaxNextDayExceeded
    );
    // Not dialled over the weekend; released Monday at 09:10.
    assert!(launches(&mut e, utc("2026-01-17T12:00:00Z")).is_empty());
    assert_eq!(
        e.poll_timeout(utc("2026-01-17T12:00:00Z")),
        Some(utc("2026-01-19T09:10:00Z"))
    );
    let l = launches(&mut e, utc("2026-01-19T09:10:00Z"));
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].number, num(1));
}

#[test]
fn end_of_day_turns_late_asap_requests_into_next_day_callbacks() {
    let mut s = settings();
    s.pacing = 1;
    s.ecbt.initial_handle_secs = 1200.0; // 20 minutes per callback
    let mut e = engine(s.clone());
    let late = utc("2026-01-14T16:30:00Z");
    // Empty queue: launches now, before 17:00.
    e.handle_register(late, req(&num(1))).unwrap();
    // Second in line: 20 minutes → 16:50, still before closing.
    assert_eq!(
        e.handle_register(late, req(&num(2)))
            .unwrap()
            .callback
            .ecbt_secs,
        1200
    );
    // Third: 40 minutes → 17:10, after closing: refused without next-day...
    assert_eq!(refusal(&mut e, late, req(&num(3))), Refusal::OutsideHours);
    // ...and a next-day callback with it.
    s.next_day.enabled = true;
    let mut e = engine(s);
    e.handle_register(late, req(&num(1))).unwrap();
    e.handle_register(late, req(&num(2))).unwrap();
    let cb = e.handle_register(late, req(&num(3))).unwrap().callback;
    assert_eq!(cb.kind, Kind::NextDay);
    assert_eq!(cb.due_at, utc("2026-01-15T09:15:00Z"));
}

#[test]
fn ecbt_above_the_maximum_refuses_and_shows_the_wait_only() {
    let mut s = settings();
    s.pacing = 1;
    s.max_ecbt_secs = 600; // two callbacks ahead at 300 s each
    let mut e = engine(s);
    for i in 1..=3 {
        e.handle_register(t0(), req(&num(i))).unwrap();
    }
    assert_eq!(
        e.handle_register(t0(), req(&num(4))).unwrap_err().outcome,
        Refusal::MaxEcbtExceeded
    );
    let v = e.target_view(t0(), "billing", true);
    assert_eq!(v.state, WidgetState::DisplayEwtOnly);
    assert_eq!(v.ewt, Some(900));
    assert!(!v.offer_asap);
}

#[test]
fn fifo_order_and_pacing() {
    let mut e = engine(settings()); // pacing 2
    let ids: Vec<String> = (1..=4)
        .map(|i| e.handle_register(t0(), req(&num(i))).unwrap().callback.id)
        .collect();
    let l = launches(&mut e, t0());
    assert_eq!(
        l.iter().map(|l| &l.callback_id).collect::<Vec<_>>(),
        [&ids[0], &ids[1]]
    );
    assert_eq!(l[0].attempt, 1);
    assert_eq!(
        l[0].contact_center.as_deref(),
        Some("sip:+15550009999@127.0.0.1:5090")
    );
    assert!(launches(&mut e, t0()).is_empty(), "pacing 2 is full");
    e.handle_attempt_ended(
        t0() + Duration::seconds(60),
        &ids[1],
        AttemptResult::Completed,
    )
    .unwrap();
    let l = launches(&mut e, t0() + Duration::seconds(60));
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].callback_id, ids[2]);
}

#[test]
fn positions_follow_the_queue_and_cancellations() {
    let mut e = engine(settings());
    let mut ids = vec![];
    for i in 1..=4 {
        let reg = e.handle_register(t0(), req(&num(i))).unwrap();
        assert_eq!(reg.position, u64::from(i));
        ids.push(reg.callback.id);
    }
    assert_eq!(
        e.handle_cancel(t0(), "acme", "555-000-0002", None),
        CancelOutcome::Canceled(ids[1].clone())
    );
    let pos = |e: &Engine, i| e.status(t0(), "acme", &num(i))[0].position;
    assert_eq!((pos(&e, 1), pos(&e, 3), pos(&e, 4)), (1, 2, 3));
    assert!(e.status(t0(), "acme", &num(2)).is_empty());
    // Another organization sees nothing.
    assert!(e.status(t0(), "other", &num(1)).is_empty());
    assert_eq!(
        e.handle_cancel(t0(), "other", &num(1), None),
        CancelOutcome::NotFound
    );
}

#[test]
fn a_canceled_callback_is_never_dialled() {
    let mut s = settings();
    s.min_delay_secs = 120;
    let mut e = engine(s);
    let id = e.handle_register(t0(), req(&num(1))).unwrap().callback.id;
    assert_eq!(e.poll_timeout(t0()), Some(t0() + Duration::seconds(120)));
    assert!(launches(&mut e, t0()).is_empty(), "minimum delay not over");
    assert_eq!(
        e.handle_cancel(t0(), "acme", &num(1), None),
        CancelOutcome::Canceled(id.clone())
    );
    assert!(launches(&mut e, t0() + Duration::hours(1)).is_empty());
    assert_eq!(e.poll_timeout(t0()), None);
    let w = writes(&mut e);
    assert!(
        matches!(w.last(), Some(Write::Callback(c)) if c.id == id && c.status == Status::Canceled)
    );
    // The number is free again.
    assert!(e.handle_register(t0(), req(&num(1))).is_ok());
}

#[test]
fn cancel_outcomes_for_in_progress_and_ambiguous_numbers() {
    let mut e = Engine::new(
        vec![target("billing", settings()), target("sales", settings())],
        1,
    );
    e.set_dialling(true);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback.id;
    let mut r = req(&num(1));
    r.call_target = "sales".into();
    let b = e.handle_register(t0(), r).unwrap().callback.id;
    assert_eq!(
        e.handle_cancel(t0(), "acme", &num(1), None),
        CancelOutcome::TooMany
    );
    assert_eq!(
        e.handle_cancel(t0(), "acme", &num(1), Some("sales")),
        CancelOutcome::Canceled(b)
    );
    assert_eq!(launches(&mut e, t0()).len(), 1);
    assert_eq!(
        e.handle_cancel(t0(), "acme", &num(1), None),
        CancelOutcome::Failed(a)
    );
}

#[test]
fn retries_follow_the_policy_and_keep_their_place() {
    let mut s = settings();
    s.pacing = 1;
    s.retry.busy = Retry {
        attempts: 2,
        delay_secs: 60,
    };
    s.retry.no_answer = Retry {
        attempts: 1,
        delay_secs: 60,
    };
    let mut e = engine(s);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback.id;
    let l = launches(&mut e, t0());
    assert_eq!(l[0].callback_id, a);
    let b = e.handle_register(t0(), req(&num(2))).unwrap().callback.id;
    writes(&mut e);
    let t1 = t0() + Duration::seconds(30);
    e.handle_attempt_ended(t1, &a, AttemptResult::Busy).unwrap();
    let w = writes(&mut e);
    assert!(w.iter().any(
        |w| matches!(w, Write::Attempt(r) if r.result == AttemptResult::Busy && r.attempt == 1)
    ));
    let st = &e.status(t1, "acme", &num(1))[0];
    assert_eq!(st.callback.status, Status::Pending);
    assert_eq!(st.callback.due_at, t1 + Duration::seconds(60));
    // B goes now; A is back after its delay, ahead of anything newer.
    assert_eq!(launches(&mut e, t1)[0].callback_id, b);
    let c = e.handle_register(t1, req(&num(3))).unwrap().callback.id;
    let t2 = t1 + Duration::seconds(90);
    e.handle_attempt_ended(t2, &b, AttemptResult::Completed)
        .unwrap();
    let l = launches(&mut e, t2);
    assert_eq!((l[0].callback_id.as_str(), l[0].attempt), (a.as_str(), 2));
    // Second busy: two attempts allowed, so it fails for good.
    e.handle_attempt_ended(t2, &a, AttemptResult::Busy).unwrap();
    let w = writes(&mut e);
    assert!(w
        .iter()
        .any(|w| matches!(w, Write::Callback(cb) if cb.id == a && cb.status == Status::Failed)));
    assert!(e.status(t2, "acme", &num(1)).is_empty());
    // No answer with one attempt allowed: failed at once.
    assert_eq!(launches(&mut e, t2)[0].callback_id, c);
    e.handle_attempt_ended(t2, &c, AttemptResult::NoAnswer)
        .unwrap();
    assert_eq!(e.active(), 0);
    assert_eq!(
        e.handle_attempt_ended(t2, &c, AttemptResult::Busy),
        Err(EngineError::UnknownCallback(c))
    );
}

#[test]
fn voicemail_retries_use_their_own_policy_then_fail_for_good() {
    let mut s = settings();
    s.pacing = 1;
    // Distinct from every other outcome's rule, so only `retry.voicemail` can explain
    // what follows.
    s.retry.voicemail = Retry {
        attempts: 3,
        delay_secs: 450,
    };
    s.retry.busy = Retry {
        attempts: 1,
        delay_secs: 60,
    };
    s.retry.no_answer = Retry {
        attempts: 1,
        delay_secs: 60,
    };
    s.retry.error = Retry {
        attempts: 1,
        delay_secs: 60,
    };
    let mut e = engine(s);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback.id;
    let mut now = t0();
    for attempt in 1..=3 {
        let l = launches(&mut e, now);
        assert_eq!(l.len(), 1, "attempt {attempt} is released when due");
        assert_eq!(
            (l[0].callback_id.as_str(), l[0].attempt),
            (a.as_str(), attempt)
        );
        writes(&mut e);
        now += Duration::seconds(20);
        e.handle_attempt_ended(now, &a, AttemptResult::Voicemail)
            .unwrap();
        let w = writes(&mut e);
        assert!(w.iter().any(|w| matches!(w, Write::Attempt(r)
            if r.result == AttemptResult::Voicemail && r.attempt == attempt)));
        if attempt < 3 {
            let st = &e.status(now, "acme", &num(1))[0];
            assert_eq!(st.callback.status, Status::Pending);
            assert_eq!(st.callback.failed.voicemail, attempt);
            assert_eq!(st.callback.due_at, now + Duration::seconds(450));
            assert!(w.iter().any(|w| matches!(w, Write::Callback(cb)
                if cb.id == a && cb.status == Status::Pending)));
            // Not a second before the voicemail delay.
            assert!(launches(&mut e, now + Duration::seconds(449)).is_empty());
            assert_eq!(e.poll_timeout(now), Some(now + Duration::seconds(450)));
            now += Duration::seconds(450);
        } else {
            // The third voicemail uses the last allowed attempt: failed, with the
            // result and the counts recorded.
            let done = w
                .iter()
                .find_map(|w| match w {
                    Write::Callback(cb) if cb.id == a => Some(cb),
                    _ => None,
                })
                .expect("the final state is written");
            assert_eq!(done.status, Status::Failed);
            assert_eq!(done.last_result, Some(AttemptResult::Voicemail));
            assert_eq!((done.attempts, done.failed.voicemail), (3, 3));
            assert_eq!(done.finished_at, Some(now));
        }
    }
    // Never retried beyond the configured attempts.
    assert!(e.status(now, "acme", &num(1)).is_empty());
    assert_eq!(e.active(), 0);
    assert_eq!(e.poll_timeout(now), None);
    assert!(launches(&mut e, now + Duration::days(1)).is_empty());
    assert!(writes(&mut e).is_empty());
    assert_eq!(
        e.handle_attempt_ended(now, &a, AttemptResult::Voicemail),
        Err(EngineError::UnknownCallback(a.clone()))
    );
    // The number is free again: a new registration is no duplicate.
    assert!(e.handle_register(now, req(&num(1))).is_ok());
}

#[test]
fn dialler_events_on_a_queued_callback_are_refused() {
    let mut e = engine(settings());
    e.set_dialling(false);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback.id;
    assert!(launches(&mut e, t0()).is_empty(), "no dialler attached");
    assert_eq!(
        e.handle_agent_connected(t0(), &a),
        Err(EngineError::NotInProgress(a.clone()))
    );
}

#[test]
fn scheduled_callbacks_book_slots_and_launch_at_their_slot_first() {
    let mut s = settings();
    s.scheduled.enabled = true;
    s.scheduled.slot_secs = 1800;
    s.scheduled.max_per_slot = 1;
    s.scheduled.days_ahead = 1;
    s.pacing = 1;
    let mut e = engine(s);
    let v = e.target_view(t0(), "billing", true);
    assert_eq!(v.state, WidgetState::OfferCallback);
    assert_eq!(v.timeslots[0], utc("2026-01-14T10:00:00Z"));
    let slot = utc("2026-01-14T11:00:00Z");
    let mut r = req(&num(1));
    r.appointment = Some(slot);
    let cb = e.handle_register(t0(), r).unwrap().callback;
    assert_eq!(
        (cb.kind, cb.due_at, cb.ecbt_secs),
        (Kind::Scheduled, slot, 3600)
    );
    let mut r = req(&num(2));
    r.appointment = Some(slot);
    assert_eq!(refusal(&mut e, t0(), r), Refusal::MaxScheduledCallsExceeded);
    let mut r = req(&num(2));
    r.appointment = Some(slot + Duration::minutes(10));
    assert_eq!(refusal(&mut e, t0(), r), Refusal::InvalidAppointment);
    let mut r = req(&num(2));
    r.appointment = Some(utc("2026-01-14T09:30:00Z"));
    assert_eq!(
        refusal(&mut e, t0(), r),
        Refusal::AppointmentInThePast,
        "in the past"
    );
    assert!(!e
        .target_view(t0(), "billing", true)
        .timeslots
        .contains(&slot));
    // An ASAP callback registered meanwhile goes first; at 11:00 the slot wins.
    let asap = e.handle_register(t0(), req(&num(3))).unwrap().callback.id;
    let asap2 = e.handle_register(t0(), req(&num(4))).unwrap().callback.id;
    assert_eq!(launches(&mut e, t0())[0].callback_id, asap);
    assert!(launches(&mut e, slot - Duration::seconds(1)).is_empty());
    e.handle_attempt_ended(slot, &asap, AttemptResult::Completed)
        .unwrap();
    assert_eq!(launches(&mut e, slot)[0].callback_id, cb.id);
    e.handle_attempt_ended(slot, &cb.id, AttemptResult::Completed)
        .unwrap();
    assert_eq!(launches(&mut e, slot)[0].callback_id, asap2);
}

#[test]
fn scheduled_only_when_closed_or_unconfigured() {
    let mut s = settings();
    s.scheduled.enabled = true;
    s.scheduled.slot_secs = 3600;
    s.scheduled.days_ahead = 1;
    let mut e = engine(s);
    let evening = utc("2026-01-14T18:00:00Z");
    let v = e.target_view(evening, "billing", true);
    assert_eq!(v.state, WidgetState::OfferScheduledCallback);
    assert_eq!(v.timeslots[0], utc("2026-01-15T09:00:00Z"));
    assert_eq!(
        refusal(&mut e, evening, req(&num(1))),
        Refusal::OutsideHours
    );
    let mut e = engine(settings());
    let mut r = req(&num(1));
    r.appointment = Some(utc("2026-01-14T11:00:00Z"));
    assert_eq!(refusal(&mut e, t0(), r), Refusal::ScheduledNotOffered);
}

#[test]
fn widget_states() {
    let mut e = engine(settings());
    let v = e.target_view(t0(), "billing", true);
    assert_eq!(v.state, WidgetState::OfferAsapCallback);
    assert!(v.state.offers_callback());
    assert_eq!(
        (v.offer_asap, v.offer_scheduled, v.ewt),
        (true, false, Some(0))
    );
    assert_eq!(
        e.target_view(t0(), "billing", false).state,
        WidgetState::PlatformUnavailable,
        "store unreachable"
    );
    assert_eq!(
        e.target_view(t0(), "nope", true).state,
        WidgetState::PlatformUnavailable
    );
    let mut s = settings();
    s.max_requested = 1;
    e = engine(s);
    e.handle_register(t0(), req(&num(1))).unwrap();
    let v = e.target_view(t0(), "billing", true);
    assert_eq!(v.state, WidgetState::DisplayEwtOnly, "too many requested");
    assert!(!v.state.offers_callback());
}

#[test]
fn ecbt_learns_from_hold_times_and_agent_connects() {
    let mut s = settings();
    s.pacing = 1;
    s.first_party = FirstParty::Agent;
    s.ecbt.smoothing = 1.0; // the last sample is the estimate
    let mut e = engine(s);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback;
    // Agent first: the customer is called once an agent answers (C = 30 s to start).
    assert_eq!(a.ecbt_secs, 30);
    launches(&mut e, t0());
    e.handle_agent_connected(t0() + Duration::seconds(50), &a.id)
        .unwrap();
    e.handle_attempt_ended(
        t0() + Duration::seconds(200),
        &a.id,
        AttemptResult::Completed,
    )
    .unwrap();
    let w = writes(&mut e);
    let done = w
        .iter()
        .find_map(|w| match w {
            Write::Callback(c) if c.status == Status::Completed => Some(c),
            _ => None,
        })
        .unwrap();
    let p = done.punctuality.unwrap();
    assert_eq!(p.processed_at, t0() + Duration::seconds(50));
    assert_eq!(p.punctuality_secs, 20);
    assert!(p.was_punctual);
    assert!(w.iter().any(|w| matches!(w, Write::Estimator { state, .. } if state.hold_secs == 200.0 && state.connect_secs == 50.0)));
    // Now one in progress: the next waits H / P = 200 s, plus C = 50 s.
    let t1 = t0() + Duration::seconds(200);
    let b = e.handle_register(t1, req(&num(2))).unwrap().callback;
    launches(&mut e, t1);
    let c = e.handle_register(t1, req(&num(3))).unwrap().callback;
    assert_eq!((b.ecbt_secs, c.ecbt_secs), (50, 250));
}

#[test]
fn punctuality_of_a_late_customer_first_callback() {
    let mut s = settings();
    s.pacing = 1;
    s.punctual_within_secs = 60;
    let mut e = engine(s);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback;
    let b = e.handle_register(t0(), req(&num(2))).unwrap().callback;
    assert_eq!(b.ecbt_secs, 300);
    launches(&mut e, t0());
    // A holds its slot 10 minutes instead of 5: B launches 300 s late.
    let t1 = t0() + Duration::seconds(600);
    e.handle_attempt_ended(t1, &a.id, AttemptResult::Completed)
        .unwrap();
    launches(&mut e, t1);
    let w = writes(&mut e);
    let launched = w
        .iter()
        .find_map(|w| match w {
            Write::Callback(c) if c.id == b.id && c.status == Status::InProgress => Some(c),
            _ => None,
        })
        .unwrap();
    let p = launched.punctuality.unwrap();
    assert_eq!(p.processed_at, t1);
    assert_eq!(p.punctuality_secs, 300);
    assert!(!p.was_punctual);
    assert_eq!(
        p.estimate_percent_accuracy, 0.0,
        "off by its whole estimate"
    );
    // A launched on time: 100 %.
    let pa = w
        .iter()
        .find_map(|w| match w {
            Write::Callback(c) if c.id == a.id && c.status == Status::Completed => c.punctuality,
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (pa.punctuality_secs, pa.estimate_percent_accuracy),
        (0, 1.0),
        "a fraction, not a percentage"
    );
}

#[test]
fn an_early_launch_outside_the_tolerance_is_not_punctual() {
    let mut s = settings();
    s.pacing = 1;
    s.punctual_within_secs = 60;
    let mut e = engine(s);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback;
    let b = e.handle_register(t0(), req(&num(2))).unwrap().callback;
    let c = e.handle_register(t0(), req(&num(3))).unwrap().callback;
    assert_eq!((b.ecbt_secs, c.ecbt_secs), (300, 600));
    launches(&mut e, t0());
    // A ends after 100 s: B launches 200 s early, beyond the 60 s tolerance.
    let t1 = t0() + Duration::seconds(100);
    e.handle_attempt_ended(t1, &a.id, AttemptResult::Completed)
        .unwrap();
    launches(&mut e, t1);
    // B ends at 570 s: C launches 30 s early, within it.
    let t2 = t0() + Duration::seconds(570);
    e.handle_attempt_ended(t2, &b.id, AttemptResult::Completed)
        .unwrap();
    launches(&mut e, t2);
    let w: Vec<Write> = writes(&mut e);
    let find = |id: &str| {
        w.iter()
            .find_map(|w| match w {
                Write::Callback(x) if x.id == id => x.punctuality,
                _ => None,
            })
            .unwrap()
    };
    let (pb, pc) = (find(&b.id), find(&c.id));
    assert_eq!((pb.punctuality_secs, pb.was_punctual), (-200, false));
    assert_eq!(pb.estimate_percent_accuracy, 0.33333, "1 − 200 / 300");
    assert_eq!((pc.punctuality_secs, pc.was_punctual), (-30, true));
    assert_eq!(pc.estimate_percent_accuracy, 0.95, "1 − 30 / 600");
}

#[test]
fn a_queue_that_is_not_moving_is_never_quoted_zero() {
    // Default pacing of 5, H = 300 s: one launch per 60 s. With no dialler attached the
    // queue does not move, and the five callers behind the first used to be told 0 s.
    let mut s = settings();
    s.pacing = 5;
    let mut e = Engine::new(vec![target("billing", s)], 7);
    let quoted: Vec<u64> = (1..=6)
        .map(|i| {
            let at = t0() + Duration::seconds(i64::from(i));
            e.handle_register(at, req(&num(i)))
                .unwrap()
                .callback
                .ecbt_secs
        })
        .collect();
    assert_eq!(quoted, [0, 60, 120, 180, 240, 300]);
    // The dialler attaches: the five free slots take the first five at once; the sixth
    // waits for a slot, the next caller for two releases.
    e.set_dialling(true);
    let t1 = t0() + Duration::seconds(30);
    assert_eq!(launches(&mut e, t1).len(), 5);
    let next = e.handle_register(t1, req(&num(7))).unwrap().callback;
    assert_eq!(next.ecbt_secs, 120);
    let v = e.status(t1, "acme", &num(6));
    assert_eq!((v[0].position, v[0].estimated_wait_secs), (1, 60));
    // An empty queue with a free slot: called at once (0 s, "less than a minute").
    let mut s = settings();
    s.pacing = 5;
    let mut e = engine(s);
    let first = e.handle_register(t1, req(&num(1))).unwrap().callback;
    launches(&mut e, t1);
    let second = e.handle_register(t1, req(&num(2))).unwrap().callback;
    assert_eq!((first.ecbt_secs, second.ecbt_secs), (0, 0));
}

#[test]
fn an_appointment_in_the_past_is_refused_as_such() {
    let mut s = settings();
    s.scheduled.enabled = true;
    let mut e = engine(s);
    let mut r = req(&num(1));
    r.appointment = Some(t0() - Duration::seconds(1));
    assert_eq!(refusal(&mut e, t0(), r), Refusal::AppointmentInThePast);
}

#[test]
fn closed_targets_hold_fifo_callbacks_until_they_open() {
    let mut s = settings();
    s.hours = weekdays("America/New_York", "09:00-17:00");
    s.next_day.enabled = true;
    s.next_day.delay_secs = 0;
    let mut e = engine(s);
    // Saturday: closed; the callback waits for Monday 09:00 New York (14:00 UTC).
    let sat = utc("2026-01-17T15:00:00Z");
    let cb = e.handle_register(sat, req(&num(1))).unwrap().callback;
    assert_eq!(cb.due_at, utc("2026-01-19T14:00:00Z"));
    assert_eq!(e.poll_timeout(sat), Some(cb.due_at));
    assert!(launches(&mut e, utc("2026-01-19T13:59:59Z")).is_empty());
    assert_eq!(launches(&mut e, utc("2026-01-19T14:00:00Z")).len(), 1);
}

#[test]
fn retries_due_while_closed_wait_for_the_opening() {
    let mut s = settings();
    s.retry.error = Retry {
        attempts: 3,
        delay_secs: 3600,
    };
    let mut e = engine(s);
    let late = utc("2026-01-14T16:40:00Z");
    let a = e.handle_register(late, req(&num(1))).unwrap().callback.id;
    launches(&mut e, late);
    e.handle_attempt_ended(late, &a, AttemptResult::Error)
        .unwrap();
    let evening = utc("2026-01-14T17:40:00Z");
    assert!(launches(&mut e, evening).is_empty());
    assert_eq!(e.poll_timeout(evening), Some(utc("2026-01-15T09:00:00Z")));
    assert_eq!(launches(&mut e, utc("2026-01-15T09:00:00Z")).len(), 1);
}

#[test]
fn next_day_due_time_follows_dst() {
    // London, Friday 27 March 2026 evening; Monday 30 March opens at 09:00 BST = 08:00 UTC.
    let mut s = settings();
    s.hours = weekdays("Europe/London", "09:00-17:00");
    s.next_day.enabled = true;
    s.next_day.delay_secs = 0;
    let mut e = engine(s);
    let cb = e
        .handle_register(utc("2026-03-27T18:00:00Z"), req(&num(1)))
        .unwrap()
        .callback;
    assert_eq!(cb.due_at, utc("2026-03-30T08:00:00Z"));
}

#[test]
fn restore_rebuilds_queues_positions_and_interrupted_calls() {
    let mut s = settings();
    s.pacing = 1;
    s.scheduled.enabled = true;
    s.scheduled.slot_secs = 3600;
    let mut e = engine(s.clone());
    let mut store: HashMap<String, Callback> = HashMap::new();
    let mut estimators = vec![];
    let mut persist = |e: &mut Engine| {
        for w in writes(e) {
            match w {
                Write::Callback(c) => {
                    store.insert(c.id.clone(), *c);
                }
                Write::Estimator { call_target, state } => estimators.push((call_target, state)),
                _ => {}
            }
        }
    };
    let ids: Vec<String> = (1..=4)
        .map(|i| e.handle_register(t0(), req(&num(i))).unwrap().callback.id)
        .collect();
    let mut r = req(&num(9));
    r.appointment = Some(utc("2026-01-14T12:00:00Z"));
    let sched = e.handle_register(t0(), r).unwrap().callback.id;
    launches(&mut e, t0()); // the first is in progress when "holdless dies"
    e.handle_cancel(t0(), "acme", &num(3), None);
    persist(&mut e);
    let max_seq = store.values().map(|c| c.seq).max().unwrap();

    let mut e2 = engine(s);
    let later = t0() + Duration::seconds(30);
    let rep = e2.restore(
        later,
        store.values().cloned().collect(),
        estimators,
        max_seq,
    );
    assert_eq!(
        rep,
        RestoreReport {
            loaded: 4,
            interrupted: 1,
            orphaned: 0,
            dialled_elsewhere: 0,
        }
    );
    // The interrupted attempt counts as an error and is retried after the error delay.
    let st = &e2.status(later, "acme", &num(1))[0];
    assert_eq!(
        (st.callback.status, st.callback.attempts),
        (Status::Pending, 1)
    );
    assert_eq!(st.callback.last_result, Some(AttemptResult::Error));
    assert_eq!(st.position, 1, "it keeps its place");
    assert_eq!(e2.status(later, "acme", &num(2))[0].position, 2);
    assert_eq!(e2.status(later, "acme", &num(4))[0].position, 3);
    assert!(e2.status(later, "acme", &num(3)).is_empty());
    assert_eq!(e2.status(later, "acme", &num(9))[0].callback.id, sched);
    // New registrations continue the sequence and queue behind.
    let n = e2.handle_register(later, req(&num(5))).unwrap();
    assert!(n.callback.seq > max_seq);
    assert_eq!(n.position, 4);
    // Dialling resumes in order: #2 now (the retry of #1 is not due yet).
    assert_eq!(launches(&mut e2, later)[0].callback_id, ids[1]);
    assert_eq!(
        e2.ready_len("billing"),
        2,
        "#4 and #5 wait for the slot; #1 and the appointment are not due"
    );
}

/// Several nodes: a node taking the lead leaves a call that another live node instance
/// is still dialling (a draining node) in progress, counted in pacing, and takes its end
/// when that node reports it; once that instance is gone, its calls end as errors.
#[test]
fn a_new_leader_leaves_a_live_nodes_calls_alone_until_it_is_gone() {
    let mut s = settings();
    s.pacing = 2;
    let mut old = engine(s.clone());
    old.set_instance(7);
    for i in 1..=4 {
        old.handle_register(t0(), req(&num(i))).unwrap();
    }
    let first = launches(&mut old, t0());
    assert_eq!(first.len(), 2);
    let mut rows: HashMap<String, Callback> = HashMap::new();
    for w in writes(&mut old) {
        if let Write::Callback(c) = w {
            rows.insert(c.id.clone(), *c);
        }
    }
    assert!(rows
        .values()
        .filter(|c| c.status == Status::InProgress)
        .all(|c| c.launched_by == Some(7)));
    let max_seq = rows.values().map(|c| c.seq).max().unwrap();

    let later = t0() + Duration::seconds(5);
    let mut new = engine(s);
    new.set_instance(8);
    let rep = new.restore_alive(
        later,
        rows.values().cloned().collect(),
        vec![],
        max_seq,
        &|i| i == 7,
    );
    assert_eq!((rep.dialled_elsewhere, rep.interrupted), (2, 0));
    assert!(
        launches(&mut new, later).is_empty(),
        "pacing 2: both slots still taken"
    );
    assert_eq!(
        new.status(later, "acme", &num(1))[0].callback.status,
        Status::InProgress
    );
    // The old node reports its first call's end (forwarded to the new leader).
    new.handle_attempt_ended(later, &first[0].callback_id, AttemptResult::Completed)
        .unwrap();
    let next = launches(&mut new, later);
    assert_eq!(next.len(), 1, "one slot free");
    // The old node dies with its second call up: that attempt ends as an error now.
    assert_eq!(new.handle_instances_gone(later, &|i| i == 8), 1);
    let st = &new.status(later, "acme", &num(2))[0];
    assert_eq!(
        (
            st.callback.status,
            st.callback.last_result,
            st.callback.launched_by
        ),
        (Status::Pending, Some(AttemptResult::Error), None)
    );
    // What this leader launched is its own: never "gone".
    assert_eq!(new.handle_instances_gone(later, &|_| false), 0);
}

#[test]
fn restore_skips_call_targets_no_longer_configured() {
    let mut e = engine(settings());
    e.handle_register(t0(), req(&num(1))).unwrap();
    let cbs: Vec<Callback> = writes(&mut e)
        .into_iter()
        .filter_map(|w| match w {
            Write::Callback(c) => Some(*c),
            _ => None,
        })
        .collect();
    let mut e2 = Engine::new(vec![target("sales", settings())], 1);
    let rep = e2.restore(t0(), cbs, vec![], 1);
    assert_eq!(rep.orphaned, 1);
    assert_eq!(e2.active(), 0);
}

#[test]
fn gauges_count_per_call_target() {
    let mut s = settings();
    s.next_day.enabled = true;
    let mut e = engine(s);
    e.handle_register(t0(), req(&num(1))).unwrap();
    e.handle_register(t0(), req(&num(2))).unwrap();
    e.handle_register(t0(), req(&num(3))).unwrap();
    launches(&mut e, t0());
    e.handle_register(utc("2026-01-14T20:00:00Z"), req(&num(4)))
        .unwrap();
    let g = &e.gauges(t0())[0];
    assert_eq!((g.pending, g.waitlisted, g.in_progress), (1, 1, 2));
}

#[test]
fn refusal_records_are_capped_per_minute() {
    let mut e = engine(settings());
    let cap = MAX_REFUSAL_RECORDS_PER_MINUTE as usize;
    for _ in 0..cap + 10 {
        let r = e.handle_register(t0(), req("bad"));
        assert_eq!(
            r.unwrap_err().outcome,
            Refusal::InvalidNumber,
            "still refused"
        );
    }
    assert_eq!(writes(&mut e).len(), cap);
    // The next minute records again.
    let _ = e.handle_register(t0() + Duration::seconds(60), req("bad"));
    assert_eq!(writes(&mut e).len(), 1);
}

#[test]
fn a_retried_appointment_takes_its_registration_place_in_the_fifo_queue() {
    let mut s = settings();
    s.pacing = 1;
    s.scheduled.enabled = true;
    s.scheduled.slot_secs = 1800;
    let mut e = engine(s);
    let slot = utc("2026-01-14T10:30:00Z");
    let mut r = req(&num(1));
    r.appointment = Some(slot);
    let a = e.handle_register(t0(), r).unwrap().callback.id;
    for i in 2..=4 {
        e.handle_register(t0(), req(&num(i))).unwrap();
    }
    // #2 goes now; at the slot the appointment goes next and ends busy.
    let b = launches(&mut e, t0())[0].callback_id.clone();
    e.handle_attempt_ended(slot, &b, AttemptResult::Completed)
        .unwrap();
    assert_eq!(launches(&mut e, slot)[0].callback_id, a);
    e.handle_attempt_ended(slot, &a, AttemptResult::Busy)
        .unwrap();
    // Registered first, it is first in the FIFO queue now, ahead of #3 and #4.
    assert_eq!(e.status(slot, "acme", &num(1))[0].position, 1);
    assert_eq!(e.status(slot, "acme", &num(3))[0].position, 2);
    assert_eq!(e.status(slot, "acme", &num(4))[0].position, 3);
}

#[test]
fn every_attempt_leaves_a_record_chained_to_the_first_and_reschedules_and_interruptions_cost_no_attempt(
) {
    use crate::callback::attempt::{AttemptReport, LegEnd};
    use crate::callback::record::Outcome;
    let mut s = settings();
    s.pacing = 1;
    s.retry.busy = Retry {
        attempts: 1,
        delay_secs: 60,
    };
    let mut e = engine(s);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback.id;
    let records = |e: &mut Engine| -> Vec<crate::callback::record::CallRecord> {
        writes(e)
            .into_iter()
            .filter_map(|w| match w {
                Write::Record(r) => Some(r.record),
                _ => None,
            })
            .collect()
    };
    // 1: the customer pressed 2: rescheduled in 300 s, no busy/no-answer cap touched.
    launches(&mut e, t0());
    let t1 = t0() + Duration::seconds(10);
    let mut rep = AttemptReport::new(FirstParty::Customer, t0());
    rep.customer = LegEnd::Answered;
    rep.rescheduled = Some(300);
    rep.ended_at = t1;
    e.handle_attempt_report(t1, &a, AttemptResult::Rescheduled, Some(rep))
        .unwrap();
    let r = records(&mut e);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].id.as_str(), r[0].original_id.as_str()),
        (a.as_str(), a.as_str())
    );
    assert_eq!(r[0].outcome, Outcome::Rescheduled);
    assert_eq!(r[0].customer_rescheduled, Some(true));
    assert_eq!(r[0].has_retry, Some(true));
    let st = &e.status(t1, "acme", &num(1))[0];
    assert_eq!(st.callback.due_at, t1 + Duration::seconds(300));
    // 2: interrupted by a shutdown: back in the queue at once, uncounted.
    let t2 = t1 + Duration::seconds(300);
    assert_eq!(launches(&mut e, t2)[0].attempt, 2);
    e.handle_attempt_ended(t2, &a, AttemptResult::Interrupted)
        .unwrap();
    let r = records(&mut e);
    assert_eq!(r[0].id, format!("{a}-2"));
    assert_eq!(r[0].original_id, a);
    assert_eq!(r[0].retry_attempt, Some(1));
    assert_eq!(
        r[0].created_at, t1,
        "a retry is created when the attempt before it ended"
    );
    assert_eq!(r[0].outcome, Outcome::Failure);
    assert_eq!(r[0].system_hangup, Some(true));
    // 3: busy with one busy attempt allowed: the callback fails for good.
    assert_eq!(launches(&mut e, t2)[0].attempt, 3);
    let mut rep = AttemptReport::new(FirstParty::Customer, t2);
    rep.customer = LegEnd::Busy;
    e.handle_attempt_report(t2, &a, AttemptResult::Busy, Some(rep))
        .unwrap();
    let r = records(&mut e);
    assert_eq!(r[0].customer_busy, Some(true));
    assert_eq!(r[0].outcome, Outcome::Unavailable);
    assert_eq!(r[0].has_retry, Some(false));
    assert_eq!(r[0].created_at, t2);
    assert_eq!(e.active(), 0);
}

#[test]
fn the_total_attempt_cap_ends_a_callback_the_per_outcome_caps_would_still_retry() {
    let mut s = settings();
    s.pacing = 1;
    let rule = Retry {
        attempts: 5,
        delay_secs: 10,
    };
    (s.retry.busy, s.retry.no_answer, s.retry.error) = (rule, rule, rule);
    s.retry.max_attempts = 3;
    let mut e = engine(s);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback.id;
    let mut now = t0();
    for (i, r) in [
        AttemptResult::Busy,
        AttemptResult::NoAnswer,
        AttemptResult::Error,
    ]
    .into_iter()
    .enumerate()
    {
        let l = launches(&mut e, now);
        assert_eq!(l.len(), 1, "attempt {} released", i + 1);
        e.handle_attempt_ended(now, &a, r).unwrap();
        now += Duration::seconds(10);
    }
    assert_eq!(e.active(), 0, "three failed attempts of any kind: done");
    assert!(launches(&mut e, now).is_empty());
}

#[test]
fn launches_per_second_spread_a_full_queue_over_time() {
    let mut s = settings();
    s.pacing = 10;
    s.launches_per_sec = 2;
    let mut e = engine(s);
    for i in 1..=4 {
        e.handle_register(t0(), req(&num(i))).unwrap();
    }
    assert_eq!(
        launches(&mut e, t0()).len(),
        1,
        "one at once, not a whole pacing"
    );
    assert_eq!(
        e.poll_timeout(t0()),
        Some(t0() + Duration::milliseconds(500)),
        "the next one is due half a second later"
    );
    assert!(launches(&mut e, t0() + Duration::milliseconds(499)).is_empty());
    assert_eq!(
        launches(&mut e, t0() + Duration::milliseconds(500)).len(),
        1
    );
    assert_eq!(launches(&mut e, t0() + Duration::seconds(5)).len(), 1);
}

/// Several nodes that dial: each launch goes to the node instance with the fewest
/// callbacks in progress (this one first on a tie), pacing holds across them all, and a
/// node that ends a call gets the next launch.
#[test]
fn launches_are_spread_over_the_nodes_that_dial() {
    let mut s = settings();
    s.pacing = 5;
    let mut e = engine(s);
    e.set_instance(1);
    e.set_diallers(vec![2, 3]);
    for i in 1..=8 {
        e.handle_register(t0(), req(&num(i))).unwrap();
    }
    let first = launches(&mut e, t0());
    let nodes: Vec<Option<i64>> = first.iter().map(|l| l.node).collect();
    assert_eq!(
        nodes,
        [1, 2, 3, 1, 2].map(Some),
        "pacing 5 over three nodes"
    );
    let by_node = |n| first.iter().find(|l| l.node == Some(n)).unwrap();
    e.handle_attempt_ended(t0(), &by_node(3).callback_id, AttemptResult::Completed)
        .unwrap();
    let next = launches(&mut e, t0());
    assert_eq!(
        next.iter().map(|l| l.node).collect::<Vec<_>>(),
        [Some(3)],
        "the freed slot goes to the least busy node"
    );
    // A node left out (unreachable, or no longer dialling): launches stay here and on 2.
    e.handle_attempt_ended(t0(), &by_node(2).callback_id, AttemptResult::Completed)
        .unwrap();
    e.set_diallers(vec![2]);
    assert_eq!(launches(&mut e, t0())[0].node, Some(2));
}

/// A node that leads again (after losing the lead while its dialler kept calling) keeps
/// the calls stamped with its own instance in progress: they are not dialled twice.
#[test]
fn a_leader_again_keeps_its_own_calls_in_progress() {
    let mut s = settings();
    s.pacing = 2;
    let mut e = engine(s.clone());
    e.set_instance(7);
    for i in 1..=3 {
        e.handle_register(t0(), req(&num(i))).unwrap();
    }
    assert_eq!(launches(&mut e, t0()).len(), 2);
    let rows: Vec<Callback> = writes(&mut e)
        .into_iter()
        .filter_map(|w| match w {
            Write::Callback(c) => Some(*c),
            _ => None,
        })
        .fold(HashMap::new(), |mut m: HashMap<String, Callback>, c| {
            m.insert(c.id.clone(), c);
            m
        })
        .into_values()
        .collect();
    let max_seq = rows.iter().map(|c| c.seq).max().unwrap();
    let mut again = engine(s);
    again.set_instance(7);
    let rep = again.restore_alive(t0(), rows, vec![], max_seq, &|_| false);
    assert_eq!((rep.dialled_elsewhere, rep.interrupted), (2, 0));
    assert!(
        launches(&mut again, t0()).is_empty(),
        "both slots still its own"
    );
}

/// Pacing 1, quotes of 300 s per callback ahead, a 60 s tolerance, `ecbt.hold_early`.
fn holding(first_party: FirstParty) -> Engine {
    let mut s = settings();
    s.pacing = 1;
    s.punctual_within_secs = 60;
    s.first_party = first_party;
    s.ecbt.hold_early = true;
    engine(s)
}

#[test]
fn hold_early_keeps_a_callback_whose_turn_comes_early_until_its_window_opens() {
    let mut e = holding(FirstParty::Customer);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback;
    let b = e.handle_register(t0(), req(&num(2))).unwrap().callback;
    assert_eq!(b.ecbt_secs, 300);
    assert_eq!(
        launches(&mut e, t0()).len(),
        1,
        "A's window is open at once"
    );
    // A ends after 100 s; B's window (300 s ± max(60 s, 20 % of 300 s)) opens at 240 s.
    let t1 = t0() + Duration::seconds(100);
    e.handle_attempt_ended(t1, &a.id, AttemptResult::Completed)
        .unwrap();
    assert!(launches(&mut e, t1).is_empty(), "B is held");
    let opens = t0() + Duration::seconds(240);
    assert_eq!(
        e.poll_timeout(t1),
        Some(opens),
        "the engine wakes when it opens"
    );
    assert!(launches(&mut e, opens - Duration::seconds(1)).is_empty());
    let l = launches(&mut e, opens);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].callback_id, b.id);
    let p = writes(&mut e)
        .iter()
        .find_map(|w| match w {
            Write::Callback(c) if c.id == b.id && c.status == Status::InProgress => c.punctuality,
            _ => None,
        })
        .unwrap();
    assert_eq!(p.punctuality_secs, -60);
    assert!(p.was_punctual, "launched inside the window");
}

#[test]
fn hold_early_lets_a_retry_pass_a_held_callback() {
    let mut s = settings();
    s.pacing = 1;
    s.punctual_within_secs = 60;
    s.ecbt.hold_early = true;
    s.retry.busy = Retry {
        attempts: 3,
        delay_secs: 60,
    };
    let mut e = engine(s);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback;
    let b = e.handle_register(t0(), req(&num(2))).unwrap().callback;
    launches(&mut e, t0());
    // A is busy after 10 s: its retry is due at 70 s and is not held (its quote was
    // kept on its first launch); B is held until 240 s. The retry goes first.
    let t1 = t0() + Duration::seconds(10);
    e.handle_attempt_ended(t1, &a.id, AttemptResult::Busy)
        .unwrap();
    assert!(launches(&mut e, t1).is_empty());
    let due = t0() + Duration::seconds(70);
    assert_eq!(e.poll_timeout(t1), Some(due));
    let l = launches(&mut e, due);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].callback_id, a.id, "the retry passes the held callback");
    e.handle_attempt_ended(due + Duration::seconds(5), &a.id, AttemptResult::Completed)
        .unwrap();
    let opens = t0() + Duration::seconds(240);
    assert_eq!(e.poll_timeout(due + Duration::seconds(5)), Some(opens));
    assert_eq!(launches(&mut e, opens)[0].callback_id, b.id);
}

#[test]
fn hold_early_counts_the_agent_legs_connect_time_when_the_agent_goes_first() {
    let mut e = holding(FirstParty::Agent);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback;
    let b = e.handle_register(t0(), req(&num(2))).unwrap().callback;
    // The quote is when the customer is called: 300 s of wait + C (30 s).
    assert_eq!(b.ecbt_secs, 330);
    launches(&mut e, t0());
    let t1 = t0() + Duration::seconds(100);
    e.handle_attempt_ended(t1, &a.id, AttemptResult::Completed)
        .unwrap();
    // Opens at 330 − max(60, 66) − 30 = 234 s.
    assert_eq!(e.poll_timeout(t1), Some(t0() + Duration::seconds(234)));
}

#[test]
fn without_hold_early_an_early_turn_launches_at_once() {
    let mut s = settings();
    s.pacing = 1;
    let mut e = engine(s);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback;
    e.handle_register(t0(), req(&num(2))).unwrap();
    launches(&mut e, t0());
    let t1 = t0() + Duration::seconds(100);
    e.handle_attempt_ended(t1, &a.id, AttemptResult::Completed)
        .unwrap();
    assert_eq!(launches(&mut e, t1).len(), 1);
}

#[test]
fn hold_early_does_not_hold_a_backlog() {
    let mut e = holding(FirstParty::Customer);
    let a = e.handle_register(t0(), req(&num(1))).unwrap().callback;
    for i in 2..=4 {
        e.handle_register(t0(), req(&num(i))).unwrap();
    }
    launches(&mut e, t0());
    // Three wait behind A with pacing 1: a backlog, so the next goes as soon as A ends.
    let t1 = t0() + Duration::seconds(100);
    e.handle_attempt_ended(t1, &a.id, AttemptResult::Completed)
        .unwrap();
    assert_eq!(launches(&mut e, t1).len(), 1, "not held");
}
