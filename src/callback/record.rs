//! Call records: one per callback attempt and one per inbound call that ended without a
//! callback, with the field names of Mindful's historical data API (v2) so reports built
//! for it keep working (`GET /v2/data/historical/{YYYYMMDD}/{HH}`).
//!
//! Durations are whole seconds, timestamps RFC 3339 UTC, and a field that does not apply
//! to a record is `null`.
//!
//! An inbound call that registered a callback has no record of its own: its inbound fields
//! ([`InboundCall`]: `ani`, `registrationDuration`, `source`, `createdAt`, metadata) are kept
//! with the callback ([`Callback::inbound`]) and carried into the first attempt's record
//! ([`CallRecord::for_attempt`]).
//!
//! `estimatePercentAccuracy` is a fraction, as Mindful's (`0.85111`), not a percentage:
//! `1 − |actual − estimated wait| / max(estimated wait, 60 s)`, clamped to 0–1 and kept to
//! five decimals, where the estimated wait is `estimatedFor` − registration and the error
//! `processedAt − estimatedFor`. (Mindful's published example, 9 s estimated and 10 s actual
//! showing 0.85111, matches no formula we could find; the 60 s floor keeps a callback
//! promised "now" and made 5 s late from scoring 0.)
//!
//! `actualCallbackTime` is the wait in seconds (`processedAt − createdAt`), `punctuality`
//! `processedAt − estimatedFor` in seconds, and `wasPunctual` whether that is within the
//! call target's `punctual_within_secs`, early or late.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::model::{Callback, FirstParty, Kind, Refusal};

/// `type`: what kind of callback the record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordType {
    /// An ASAP callback (next-business-day callbacks too: `nextDayCallbackScheduled` says so).
    Asap,
    /// A callback at an appointment.
    Scheduled,
    /// A call without a callback.
    Unknown,
}

impl RecordType {
    /// The type of a callback of this kind.
    pub fn of(kind: Kind) -> RecordType {
        match kind {
            Kind::Scheduled => RecordType::Scheduled,
            Kind::Asap | Kind::NextDay => RecordType::Asap,
        }
    }
}

/// `outcome`: how the attempt or the call ended, one word. The set:
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The customer and an agent were connected.
    Successful,
    /// The customer could not be reached: busy, no answer, voicemail, or no acknowledgement.
    Unavailable,
    /// A leg failed (error, rejection, timeout on the agent side) or holdless failed.
    Failure,
    /// The callback was canceled.
    Canceled,
    /// The caller (inbound) or the customer (attempt) hung up before it was done.
    Abandoned,
    /// The customer chose to reschedule the callback.
    Rescheduled,
    /// Inbound: the caller chose to keep holding for an agent (`choseToHold`).
    Held,
    /// Inbound: a registration rule refused the callback (the rule's field says which).
    Refused,
    /// Inbound: no callback was offered; the call went on to the agent queue.
    NotOffered,
}

/// One call record. Field names (camelCase in JSON) are exactly those of the historical
/// data API; see `shared/reference/historical-fields.md` for each one's meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Total duration of this call, seconds.
    pub active_duration: Option<u64>,
    /// How long the customer really waited for the callback (processedAt − createdAt), s.
    pub actual_callback_time: Option<u64>,
    /// The agent leg got a busy signal.
    pub agent_busy: Option<bool>,
    /// How long the customer waited for the agent side to connect, seconds.
    pub agent_delay: Option<u64>,
    /// The agent side hung up first.
    pub agent_hangup: Option<bool>,
    /// The agent leg failed with an error.
    pub agent_leg_error: Option<bool>,
    /// The agent leg was rejected.
    pub agent_leg_rejected: Option<bool>,
    /// The agent leg timed out.
    pub agent_leg_timeout: Option<bool>,
    /// How long the agent side waited for the other party, seconds.
    pub agent_wait_duration: Option<u64>,
    /// The caller's number on the inbound call.
    pub ani: Option<String>,
    /// The call target.
    pub call_target_id: Option<String>,
    /// The call target's name.
    pub call_target_name: Option<String>,
    /// The inbound caller chose to keep holding instead of a callback.
    pub chose_to_hold: Option<bool>,
    /// When holdless first learned of the call (first attempts, calls without a callback),
    /// or when the previous attempt created this one.
    pub created_at: DateTime<Utc>,
    /// The customer leg got a busy signal.
    pub customer_busy: Option<bool>,
    /// How long the customer took to acknowledge the callback, seconds.
    pub customer_delay: Option<u64>,
    /// The customer hung up first.
    pub customer_hangup: Option<bool>,
    /// The customer leg failed with an error.
    pub customer_leg_error: Option<bool>,
    /// The customer leg was rejected.
    pub customer_leg_rejected: Option<bool>,
    /// The customer leg timed out.
    pub customer_leg_timeout: Option<bool>,
    /// The customer chose to reschedule.
    pub customer_rescheduled: Option<bool>,
    /// From an agent accepting the callback to being connected with the customer, seconds.
    pub customer_wait_duration: Option<u64>,
    /// First offered to an agent who did not accept it, then delivered to another.
    pub disconnect_rescue: Option<bool>,
    /// A callback for this number was already pending.
    pub duplicate_callback: Option<bool>,
    /// The inbound caller hung up before the registration's information was collected.
    pub early_hangup: Option<bool>,
    /// The call arrived in the end-of-business-day period.
    pub end_of_business_day: Option<bool>,
    /// When the attempt (or the call) ended.
    pub ended_at: DateTime<Utc>,
    /// How close the estimate was (see the module documentation), a fraction 0–1.
    pub estimate_percent_accuracy: Option<f64>,
    /// At registration, the estimated wait for the callback, seconds.
    pub estimated_callback_time: Option<u64>,
    /// When the callback was expected to be launched.
    pub estimated_for: Option<DateTime<Utc>>,
    /// Which party was called first.
    pub first_party_called: Option<FirstParty>,
    /// Another attempt follows this one.
    pub has_retry: Option<bool>,
    /// This attempt's (or call's) identifier.
    pub id: String,
    /// A voicemail was left.
    pub leave_voicemail: Option<bool>,
    /// The ECBT was over the call target's maximum.
    pub max_ecbt_exceeded: Option<bool>,
    /// The requested scheduled slot was full.
    pub max_scheduled_calls_exceeded: Option<bool>,
    /// The number's toll rate is over the permitted maximum.
    pub max_toll_rate_exceeded: Option<bool>,
    /// Metadata of the registration: captured SIP headers and API `user_data`.
    pub metadata: Option<Map<String, Value>>,
    /// A next-business-day callback was offered.
    pub next_day_callback_offered: Option<bool>,
    /// That offer was accepted.
    pub next_day_callback_scheduled: Option<bool>,
    /// The first attempt's id (equal to `id` on a first attempt and on inbound calls).
    pub original_id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Registration attempted outside the call target's business hours.
    pub outside_hours: Option<bool>,
    /// The number the callback was registered for.
    pub phone_number: Option<String>,
    /// The agent leg exceeded the priority-queue timeout.
    pub priority_queue_timed_out: Option<bool>,
    /// When the first leg of the attempt was launched.
    pub processed_at: Option<DateTime<Utc>>,
    /// processedAt − estimatedFor, seconds: positive late, negative early.
    pub punctuality: Option<i64>,
    /// How long the customer spent registering over voice, seconds.
    pub registration_duration: Option<u64>,
    /// 0 for the original attempt, 1 for the first retry, …
    pub retry_attempt: Option<u32>,
    /// The segment that handled the call.
    pub segment_name: Option<String>,
    /// What the callback was registered through: `Phone:<dialled number>`, `CBWidget:<id>`.
    pub source: Option<String>,
    /// holdless ended the call itself.
    pub system_hangup: Option<bool>,
    /// How long customer and agent were connected, seconds.
    pub talk_duration: Option<u64>,
    /// `asap`, `scheduled`, or `unknown` for calls without a callback.
    #[serde(rename = "type")]
    pub r#type: RecordType,
    /// Time the callback spent waitlisted before dispatch, seconds.
    pub waitlist_delay: Option<u64>,
    /// The callback launched within the range quoted at registration (the tolerance either
    /// side of `estimatedFor`).
    pub was_punctual: Option<bool>,
}

/// A call record and the organization it belongs to: what the store keeps and the
/// historical API serves to that organization only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordEntry {
    /// Organization (empty for call targets reachable through SIP only).
    pub organization: String,
    /// The record.
    pub record: CallRecord,
}

/// What the inbound call that registered a callback contributes to the first attempt's
/// record; kept with the callback until then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundCall {
    /// The caller's number (`From` user part), if any.
    pub ani: Option<String>,
    /// The number the caller dialled (the call target's number).
    pub dialled: String,
    /// When the INVITE arrived.
    pub created_at: DateTime<Utc>,
    /// How long the caller spent registering, seconds.
    pub registration_duration_secs: Option<u64>,
    /// Captured headers, decoded (see [`crate::callback::config::CapturedHeader::add_to`]).
    pub metadata: Map<String, Value>,
}

impl InboundCall {
    /// `source`: `Phone:<dialled number>`.
    pub fn source(&self) -> String {
        format!("Phone:{}", self.dialled)
    }
}

/// Which attempt of a callback a record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// This attempt's id.
    pub id: String,
    /// The first attempt's id (equal to `id` on the first attempt).
    pub original_id: String,
    /// 0 for the first attempt, 1 for the first retry, …
    pub retry_attempt: u32,
    /// When the previous attempt created this one (retries); for a first attempt, used
    /// only when the callback has no inbound call (registered through the API).
    pub created_at: DateTime<Utc>,
}

/// How an inbound call ended without a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundEnd {
    /// The caller chose to keep holding for an agent.
    ChoseToHold,
    /// The caller hung up before the registration's information was collected.
    EarlyHangup,
    /// A registration rule refused the callback.
    Refused(Refusal),
    /// No callback was offered.
    NotOffered,
}

/// The call target a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetRef<'a> {
    /// Identifier.
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
}

fn secs_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<u64> {
    u64::try_from((to - from).num_seconds()).ok()
}

impl CallRecord {
    /// A record with every optional field `null`, type `unknown`.
    pub fn blank(
        id: String,
        created_at: DateTime<Utc>,
        ended_at: DateTime<Utc>,
        outcome: Outcome,
    ) -> CallRecord {
        CallRecord {
            active_duration: None,
            actual_callback_time: None,
            agent_busy: None,
            agent_delay: None,
            agent_hangup: None,
            agent_leg_error: None,
            agent_leg_rejected: None,
            agent_leg_timeout: None,
            agent_wait_duration: None,
            ani: None,
            call_target_id: None,
            call_target_name: None,
            chose_to_hold: None,
            created_at,
            customer_busy: None,
            customer_delay: None,
            customer_hangup: None,
            customer_leg_error: None,
            customer_leg_rejected: None,
            customer_leg_timeout: None,
            customer_rescheduled: None,
            customer_wait_duration: None,
            disconnect_rescue: None,
            duplicate_callback: None,
            early_hangup: None,
            end_of_business_day: None,
            ended_at,
            estimate_percent_accuracy: None,
            estimated_callback_time: None,
            estimated_for: None,
            first_party_called: None,
            has_retry: None,
            original_id: id.clone(),
            id,
            leave_voicemail: None,
            max_ecbt_exceeded: None,
            max_scheduled_calls_exceeded: None,
            max_toll_rate_exceeded: None,
            metadata: None,
            next_day_callback_offered: None,
            next_day_callback_scheduled: None,
            outcome,
            outside_hours: None,
            phone_number: None,
            priority_queue_timed_out: None,
            processed_at: None,
            punctuality: None,
            registration_duration: None,
            retry_attempt: None,
            segment_name: None,
            source: None,
            system_hangup: None,
            talk_duration: None,
            r#type: RecordType::Unknown,
            waitlist_delay: None,
            was_punctual: None,
        }
    }

    /// Copies the inbound call's fields: `ani`, `registrationDuration`, `source`,
    /// `createdAt` and its captured metadata (merged into `metadata`, existing keys kept).
    pub fn with_inbound(mut self, inbound: &InboundCall) -> CallRecord {
        self.ani = inbound.ani.clone();
        self.registration_duration = inbound.registration_duration_secs;
        self.source = Some(inbound.source());
        self.created_at = inbound.created_at;
        let m = self.metadata.get_or_insert_with(Map::new);
        for (k, v) in &inbound.metadata {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self
    }

    /// The record of an inbound call that ended without a callback (type `unknown`):
    /// kept holding (`choseToHold`), hung up early (`earlyHangup`), refused by a rule (the
    /// rule's own field, when it has one), or not offered. `activeDuration` is the call's.
    pub fn inbound_without_callback(
        id: String,
        target: Option<TargetRef<'_>>,
        inbound: &InboundCall,
        ended_at: DateTime<Utc>,
        end: InboundEnd,
    ) -> CallRecord {
        let outcome = match end {
            InboundEnd::ChoseToHold => Outcome::Held,
            InboundEnd::EarlyHangup => Outcome::Abandoned,
            InboundEnd::Refused(_) => Outcome::Refused,
            InboundEnd::NotOffered => Outcome::NotOffered,
        };
        let mut r =
            CallRecord::blank(id, inbound.created_at, ended_at, outcome).with_inbound(inbound);
        r.call_target_id = target.map(|t| t.id.to_owned());
        r.call_target_name = target.map(|t| t.name.to_owned());
        r.active_duration = secs_between(inbound.created_at, ended_at);
        r.chose_to_hold = Some(end == InboundEnd::ChoseToHold);
        r.early_hangup = Some(end == InboundEnd::EarlyHangup);
        if let InboundEnd::Refused(rule) = end {
            let flag = match rule {
                Refusal::DuplicateCallback => Some(&mut r.duplicate_callback),
                Refusal::OutsideHours => Some(&mut r.outside_hours),
                Refusal::MaxEcbtExceeded => Some(&mut r.max_ecbt_exceeded),
                Refusal::MaxScheduledCallsExceeded => Some(&mut r.max_scheduled_calls_exceeded),
                Refusal::MaxTollRateExceeded => Some(&mut r.max_toll_rate_exceeded),
                _ => None,
            };
            if let Some(f) = flag {
                *f = Some(true);
            }
        }
        r
    }

    /// The base of an attempt's record, from its callback: call target, type, number,
    /// estimate, metadata (`user_data` and captured headers), `retryAttempt`, `source`,
    /// `ani` and, on a first attempt (`retry_attempt` 0), the inbound call's
    /// `registrationDuration` and `createdAt` and the launch's punctuality
    /// (`processedAt`, `punctuality`, `wasPunctual`, `estimatePercentAccuracy`,
    /// `actualCallbackTime` = processedAt − createdAt). The dialler
    /// fills in the legs' fields, durations, `processedAt` (when not the first launch),
    /// `hasRetry`, `firstPartyCalled` and the outcome.
    pub fn for_attempt(
        cb: &Callback,
        target_name: Option<&str>,
        attempt: Attempt,
        ended_at: DateTime<Utc>,
        outcome: Outcome,
    ) -> CallRecord {
        let Attempt {
            id,
            original_id,
            retry_attempt,
            created_at,
        } = attempt;
        let mut r = CallRecord::blank(id, created_at, ended_at, outcome);
        r.original_id = original_id;
        r.retry_attempt = Some(retry_attempt);
        r.call_target_id = Some(cb.call_target.clone());
        r.call_target_name = target_name.map(String::from);
        r.r#type = RecordType::of(cb.kind);
        r.phone_number = Some(cb.number.clone());
        r.estimated_for = Some(cb.estimated_for);
        r.estimated_callback_time = Some(cb.ecbt_secs);
        r.next_day_callback_scheduled = Some(cb.kind == Kind::NextDay);
        r.source = cb.source_label();
        r.metadata = Some(cb.user_data.clone());
        match (&cb.inbound, retry_attempt) {
            (Some(inbound), 0) => r = r.with_inbound(inbound),
            (Some(inbound), _) => {
                let m = r.metadata.get_or_insert_with(Map::new);
                for (k, v) in &inbound.metadata {
                    m.entry(k.clone()).or_insert_with(|| v.clone());
                }
                r.ani = inbound.ani.clone();
                r.source = Some(inbound.source());
            }
            (None, _) => {}
        }
        // The first launch's punctuality (the engine measures it once per callback).
        if let (Some(p), 0) = (&cb.punctuality, retry_attempt) {
            r.punctuality = Some(p.punctuality_secs);
            r.was_punctual = Some(p.was_punctual);
            r.estimate_percent_accuracy = Some(p.estimate_percent_accuracy);
            r.processed_at = Some(p.processed_at);
            r.actual_callback_time = secs_between(r.created_at, p.processed_at);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of `shared/reference/historical-fields.md`, in its order.
    const FIELDS: [&str; 56] = [
        "activeDuration",
        "actualCallbackTime",
        "agentBusy",
        "agentDelay",
        "agentHangup",
        "agentLegError",
        "agentLegRejected",
        "agentLegTimeout",
        "agentWaitDuration",
        "ani",
        "callTargetId",
        "callTargetName",
        "choseToHold",
        "createdAt",
        "customerBusy",
        "customerDelay",
        "customerHangup",
        "customerLegError",
        "customerLegRejected",
        "customerLegTimeout",
        "customerRescheduled",
        "customerWaitDuration",
        "disconnectRescue",
        "duplicateCallback",
        "earlyHangup",
        "endOfBusinessDay",
        "endedAt",
        "estimatePercentAccuracy",
        "estimatedCallbackTime",
        "estimatedFor",
        "firstPartyCalled",
        "hasRetry",
        "id",
        "leaveVoicemail",
        "maxEcbtExceeded",
        "maxScheduledCallsExceeded",
        "maxTollRateExceeded",
        "metadata",
        "nextDayCallbackOffered",
        "nextDayCallbackScheduled",
        "originalId",
        "outcome",
        "outsideHours",
        "phoneNumber",
        "priorityQueueTimedOut",
        "processedAt",
        "punctuality",
        "registrationDuration",
        "retryAttempt",
        "segmentName",
        "source",
        "systemHangup",
        "talkDuration",
        "type",
        "waitlistDelay",
        "wasPunctual",
    ];

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn inbound() -> InboundCall {
        let mut metadata = Map::new();
        metadata.insert("X-User-To-User".into(), Value::String("ABC-12345".into()));
        InboundCall {
            ani: Some("+15557654321".into()),
            dialled: "+15550001000".into(),
            created_at: at("2026-01-14T03:10:00Z"),
            registration_duration_secs: Some(42),
            metadata,
        }
    }

    #[test]
    fn field_names_are_exactly_the_reference() {
        let r = CallRecord::blank(
            "r1".into(),
            at("2026-01-14T03:00:00Z"),
            at("2026-01-14T03:00:05Z"),
            Outcome::Held,
        );
        let v = serde_json::to_value(&r).unwrap();
        let mut got: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want: Vec<&str> = FIELDS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["type"], "unknown");
        assert_eq!(v["createdAt"], "2026-01-14T03:00:00Z");
        assert_eq!(v["endedAt"], "2026-01-14T03:00:05Z");
        assert_eq!(v["originalId"], "r1");
        assert_eq!(v["outcome"], "Held");
        assert_eq!(v["ani"], Value::Null);
        let back: CallRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn inbound_calls_without_a_callback() {
        let t = TargetRef {
            id: "billing",
            name: "Billing",
        };
        let end = at("2026-01-14T03:12:30Z");
        let held = CallRecord::inbound_without_callback(
            "c1".into(),
            Some(t),
            &inbound(),
            end,
            InboundEnd::ChoseToHold,
        );
        let v = serde_json::to_value(&held).unwrap();
        assert_eq!(v["choseToHold"], true);
        assert_eq!(v["earlyHangup"], false);
        assert_eq!(v["type"], "unknown");
        assert_eq!(v["ani"], "+15557654321");
        assert_eq!(v["source"], "Phone:+15550001000");
        assert_eq!(v["createdAt"], "2026-01-14T03:10:00Z");
        assert_eq!(v["activeDuration"], 150);
        assert_eq!(v["registrationDuration"], 42);
        assert_eq!(v["callTargetName"], "Billing");
        assert_eq!(v["metadata"]["X-User-To-User"], "ABC-12345");
        assert_eq!(v["outcome"], "Held");
        assert_eq!(v["duplicateCallback"], Value::Null);

        let early = CallRecord::inbound_without_callback(
            "c2".into(),
            None,
            &inbound(),
            end,
            InboundEnd::EarlyHangup,
        );
        assert_eq!(
            (early.early_hangup, early.chose_to_hold, early.outcome),
            (Some(true), Some(false), Outcome::Abandoned)
        );
        assert_eq!(early.call_target_id, None);

        let dup = CallRecord::inbound_without_callback(
            "c3".into(),
            Some(t),
            &inbound(),
            end,
            InboundEnd::Refused(Refusal::DuplicateCallback),
        );
        assert_eq!(
            (dup.duplicate_callback, dup.outcome),
            (Some(true), Outcome::Refused)
        );
        let closed = CallRecord::inbound_without_callback(
            "c4".into(),
            Some(t),
            &inbound(),
            end,
            InboundEnd::Refused(Refusal::OutsideHours),
        );
        assert_eq!(closed.outside_hours, Some(true));
        let not = CallRecord::inbound_without_callback(
            "c5".into(),
            Some(t),
            &inbound(),
            end,
            InboundEnd::NotOffered,
        );
        assert_eq!(not.outcome, Outcome::NotOffered);
        assert_eq!(serde_json::to_value(not).unwrap()["outcome"], "NotOffered");
    }

    #[test]
    fn type_of_each_kind() {
        assert_eq!(RecordType::of(Kind::Asap), RecordType::Asap);
        assert_eq!(RecordType::of(Kind::NextDay), RecordType::Asap);
        assert_eq!(RecordType::of(Kind::Scheduled), RecordType::Scheduled);
    }

    #[test]
    fn attempts_carry_the_inbound_call_on_the_first_attempt_only() {
        use crate::callback::engine::{Engine, RegisterRequest, TargetConfig};
        use crate::callback::CallbackSettings;
        let mut e = Engine::new(
            vec![TargetConfig {
                id: "billing".into(),
                name: "Billing".into(),
                settings: CallbackSettings {
                    organization: Some("acme".into()),
                    ..CallbackSettings::default()
                },
            }],
            1,
        );
        e.set_dialling(true);
        let now = at("2026-01-14T03:11:00Z");
        let mut user_data = Map::new();
        user_data.insert("account".into(), Value::String("A-1".into()));
        let cb = e
            .handle_register(
                now,
                RegisterRequest {
                    call_target: "billing".into(),
                    number: "+15550001234".into(),
                    user_data,
                    inbound: Some(inbound()),
                    ..RegisterRequest::default()
                },
            )
            .unwrap()
            .callback;
        let launched = at("2026-01-14T03:20:00Z");
        e.poll_launch(launched).unwrap();
        let cb = std::iter::from_fn(|| e.poll_write())
            .filter_map(|w| match w {
                crate::callback::engine::Write::Callback(c) if c.id == cb.id => Some(*c),
                _ => None,
            })
            .last()
            .unwrap();
        assert!(cb.punctuality.is_some() && cb.inbound.is_some());
        let first = CallRecord::for_attempt(
            &cb,
            Some("Billing"),
            Attempt {
                id: "a1".into(),
                original_id: "a1".into(),
                retry_attempt: 0,
                created_at: now,
            },
            at("2026-01-14T03:25:00Z"),
            Outcome::Successful,
        );
        let v = serde_json::to_value(&first).unwrap();
        assert_eq!(
            v["createdAt"], "2026-01-14T03:10:00Z",
            "the INVITE's arrival"
        );
        assert_eq!(v["ani"], "+15557654321");
        assert_eq!(v["registrationDuration"], 42);
        assert_eq!(v["source"], "Phone:+15550001000");
        assert_eq!(v["type"], "asap");
        assert_eq!(v["phoneNumber"], "+15550001234");
        assert_eq!(v["retryAttempt"], 0);
        assert_eq!(v["processedAt"], "2026-01-14T03:20:00Z");
        assert_eq!(v["actualCallbackTime"], 600);
        assert_eq!(v["metadata"]["account"], "A-1");
        assert_eq!(v["metadata"]["X-User-To-User"], "ABC-12345");
        assert_eq!(v["callTargetName"], "Billing");

        let retry = CallRecord::for_attempt(
            &cb,
            Some("Billing"),
            Attempt {
                id: "a2".into(),
                original_id: "a1".into(),
                retry_attempt: 1,
                created_at: at("2026-01-14T03:25:00Z"),
            },
            at("2026-01-14T03:40:00Z"),
            Outcome::Unavailable,
        );
        assert_eq!(retry.created_at, at("2026-01-14T03:25:00Z"));
        assert_eq!(retry.registration_duration, None);
        assert_eq!(retry.processed_at, None);
        assert_eq!(retry.original_id, "a1");
        assert_eq!(retry.source.as_deref(), Some("Phone:+15550001000"));
        assert_eq!(
            retry
                .metadata
                .as_ref()
                .and_then(|m| m.get("X-User-To-User")),
            Some(&Value::String("ABC-12345".into()))
        );
    }
}
