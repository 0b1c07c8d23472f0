//! What the dialler saw of one attempt (how each leg ended, when things happened, who hung
//! up), and how that fills the attempt's call record. The dialler builds an
//! [`AttemptReport`]; the engine, which holds the callback, turns it into the record with
//! [`apply`] when the attempt ends.

use chrono::{DateTime, Utc};

use super::model::{AttemptResult, FirstParty};
use super::record::{CallRecord, Outcome};

/// How one leg of an attempt ended (the issue's classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum LegEnd {
    /// Never placed.
    #[default]
    NotPlaced,
    /// Placed and still ringing when the attempt ended (the other side gave up first).
    Abandoned,
    /// Answered.
    Answered,
    /// Busy (486, 600).
    Busy,
    /// Not answered: the ring timeout, 408, 480.
    NoAnswer,
    /// Refused: 603, 403.
    Rejected,
    /// Any other failure: other 4xx/5xx/6xx, no response, transport failure, auth failure.
    Error,
    /// Answered, but no ACK could be completed or the media was unusable.
    NotAcknowledged,
}

impl LegEnd {
    /// The class of a final failure status on an INVITE.
    pub fn of_status(code: u16) -> LegEnd {
        match code {
            486 | 600 => LegEnd::Busy,
            408 | 480 => LegEnd::NoAnswer,
            403 | 603 => LegEnd::Rejected,
            _ => LegEnd::Error,
        }
    }

    /// The retry class of an attempt that ended on this leg.
    pub fn result(self) -> AttemptResult {
        match self {
            LegEnd::Busy => AttemptResult::Busy,
            LegEnd::NoAnswer => AttemptResult::NoAnswer,
            _ => AttemptResult::Error,
        }
    }
}

/// Which party hung up first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Party {
    /// The customer.
    Customer,
    /// The agent (contact center).
    Agent,
    /// holdless itself.
    System,
}

/// What the dialler reports of one attempt.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttemptReport {
    /// Which leg was dialled first.
    pub first_party: FirstParty,
    /// When the first leg was launched.
    pub launched_at: DateTime<Utc>,
    /// When the attempt ended.
    pub ended_at: DateTime<Utc>,
    /// The customer's leg.
    pub customer: LegEnd,
    /// The agent's leg.
    pub agent: LegEnd,
    /// Customer leg answered → the customer pressed 1, seconds.
    pub customer_delay: Option<u64>,
    /// The customer waited this long for the agent side to answer, seconds.
    pub agent_delay: Option<u64>,
    /// The agent waited this long for the customer (agent first), seconds.
    pub agent_wait: Option<u64>,
    /// From the agent accepting to the customer connected (agent first), seconds.
    pub customer_wait: Option<u64>,
    /// Customer and agent connected this long, seconds.
    pub talk: Option<u64>,
    /// Who hung up first.
    pub hung_up_first: Option<Party>,
    /// The voicemail prompt was played to an answering customer who never pressed 1.
    pub left_voicemail: bool,
    /// The customer pressed 2: called again in this many seconds.
    pub rescheduled: Option<u64>,
    /// The agent leg rang past the priority-queue timeout.
    pub priority_queue_timed_out: bool,
}

impl AttemptReport {
    /// A report of nothing placed yet, launched at `at`.
    pub fn new(first_party: FirstParty, at: DateTime<Utc>) -> Self {
        AttemptReport {
            first_party,
            launched_at: at,
            ended_at: at,
            customer: LegEnd::NotPlaced,
            agent: LegEnd::NotPlaced,
            customer_delay: None,
            agent_delay: None,
            agent_wait: None,
            customer_wait: None,
            talk: None,
            hung_up_first: None,
            left_voicemail: false,
            rescheduled: None,
            priority_queue_timed_out: false,
        }
    }

    /// The record's `outcome` for an attempt that ended with `result`.
    pub fn outcome(&self, result: AttemptResult) -> Outcome {
        match result {
            AttemptResult::Completed => Outcome::Successful,
            AttemptResult::Rescheduled => Outcome::Rescheduled,
            AttemptResult::Abandoned => Outcome::Abandoned,
            AttemptResult::Busy | AttemptResult::NoAnswer | AttemptResult::Voicemail => {
                Outcome::Unavailable
            }
            AttemptResult::Error | AttemptResult::Interrupted => Outcome::Failure,
        }
    }
}

/// Fills the attempt's record with what the dialler saw.
pub fn apply(r: &mut CallRecord, a: &AttemptReport) {
    let leg = |e: LegEnd| {
        (
            e == LegEnd::Busy,
            e == LegEnd::Rejected,
            e == LegEnd::NoAnswer,
            matches!(e, LegEnd::Error | LegEnd::NotAcknowledged),
        )
    };
    let placed = |e: LegEnd| e != LegEnd::NotPlaced;
    if placed(a.customer) {
        let (busy, rejected, timeout, error) = leg(a.customer);
        r.customer_busy = Some(busy);
        r.customer_leg_rejected = Some(rejected);
        r.customer_leg_timeout = Some(timeout);
        r.customer_leg_error = Some(error);
    }
    if placed(a.agent) {
        let (busy, rejected, timeout, error) = leg(a.agent);
        r.agent_busy = Some(busy);
        r.agent_leg_rejected = Some(rejected);
        r.agent_leg_timeout = Some(timeout || a.priority_queue_timed_out);
        r.agent_leg_error = Some(error);
    }
    r.first_party_called = Some(a.first_party);
    r.processed_at.get_or_insert(a.launched_at);
    r.customer_delay = a.customer_delay;
    r.agent_delay = a.agent_delay;
    r.agent_wait_duration = a.agent_wait;
    r.customer_wait_duration = a.customer_wait;
    r.talk_duration = a.talk;
    r.active_duration = u64::try_from((a.ended_at - a.launched_at).num_seconds()).ok();
    r.customer_hangup = Some(a.hung_up_first == Some(Party::Customer));
    r.agent_hangup = Some(a.hung_up_first == Some(Party::Agent));
    r.system_hangup = Some(a.hung_up_first == Some(Party::System));
    r.leave_voicemail = Some(a.left_voicemail);
    r.customer_rescheduled = Some(a.rescheduled.is_some());
    r.priority_queue_timed_out = Some(a.priority_queue_timed_out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fall_in_the_issue_classes() {
        assert_eq!(LegEnd::of_status(486), LegEnd::Busy);
        assert_eq!(LegEnd::of_status(600), LegEnd::Busy);
        assert_eq!(LegEnd::of_status(408), LegEnd::NoAnswer);
        assert_eq!(LegEnd::of_status(480), LegEnd::NoAnswer);
        assert_eq!(LegEnd::of_status(603), LegEnd::Rejected);
        assert_eq!(LegEnd::of_status(403), LegEnd::Rejected);
        assert_eq!(LegEnd::of_status(503), LegEnd::Error);
        assert_eq!(LegEnd::of_status(404), LegEnd::Error);
        assert_eq!(LegEnd::Busy.result(), AttemptResult::Busy);
        assert_eq!(LegEnd::Rejected.result(), AttemptResult::Error);
    }

    #[test]
    fn a_busy_customer_fills_only_the_customer_fields() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut a = AttemptReport::new(FirstParty::Customer, t);
        a.customer = LegEnd::Busy;
        a.ended_at = t + chrono::Duration::seconds(3);
        let mut r = CallRecord::blank("x".into(), t, a.ended_at, a.outcome(AttemptResult::Busy));
        apply(&mut r, &a);
        assert_eq!(r.customer_busy, Some(true));
        assert_eq!(r.customer_leg_error, Some(false));
        assert_eq!(r.agent_busy, None, "the agent leg was never placed");
        assert_eq!(r.active_duration, Some(3));
        assert_eq!(r.outcome, Outcome::Unavailable);
        assert_eq!(r.processed_at, Some(t));
    }
}
