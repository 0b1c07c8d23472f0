//! The callback record and the small enums around it. Plain data: the engine changes it,
//! the store persists it, the API renders it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::record::InboundCall;

/// A callback's identifier: 32 lowercase hex digits from the engine's seeded RNG.
pub type CallbackId = String;

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $v),+ }

        impl $name {
            /// The stable name used in the store, the API and metrics.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            /// Parses the stable name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum! {
    /// How the callback was asked for.
    Kind {
        /// As soon as possible: first in, first out per call target.
        Asap = "asap",
        /// At an appointment time (a scheduled slot).
        Scheduled = "scheduled",
        /// Registered while closed; dialled after the next opening plus a delay.
        NextDay = "next_day",
    }
}

str_enum! {
    /// Where a callback is in its life.
    Status {
        /// Waiting in the queue (also between retries).
        Pending = "pending",
        /// A next-business-day callback waiting for the call target to open.
        Waitlisted = "waitlisted",
        /// Released for dialling; an attempt is under way.
        InProgress = "in_progress",
        /// The customer and the contact center were bridged.
        Completed = "completed",
        /// Every allowed attempt failed.
        Failed = "failed",
        /// Canceled before it was dialled.
        Canceled = "canceled",
    }
}

str_enum! {
    /// Who registered the callback.
    Source {
        /// The Scheduler HTTP API.
        Api = "api",
        /// A caller in the SIP inbound flow.
        Sip = "sip",
    }
}

str_enum! {
    /// How a dialling attempt ended, as reported by the dialler.
    AttemptResult {
        /// The customer and the agent were connected: the callback is done.
        Completed = "completed",
        /// The customer's line was busy.
        Busy = "busy",
        /// Nobody answered the customer leg in time.
        NoAnswer = "no_answer",
        /// A voicemail answered, or the customer did not acknowledge the callback.
        Voicemail = "voicemail",
        /// Any other failure (trunk error, agent leg failed, holdless restarted mid-call).
        Error = "error",
        /// The customer pressed 2: called again after the call target's reschedule delay
        /// (not a failure, never counted against the retry caps).
        Rescheduled = "rescheduled",
        /// The customer acknowledged, then hung up before an agent was connected: not
        /// retried (they chose to leave).
        Abandoned = "abandoned",
        /// holdless stopped (or its dialler went away) before the attempt could finish:
        /// the callback goes back to the queue at once, not counted against any cap.
        Interrupted = "interrupted",
    }
}

str_enum! {
    /// Which leg holdless dials first when a callback launches.
    FirstParty {
        /// Call the customer, then the contact center.
        Customer = "customer",
        /// Call the contact center; call the customer once an agent answers.
        Agent = "agent",
    }
}

impl Status {
    /// Still to be dialled or being dialled (counts for duplicates).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Pending | Status::Waitlisted | Status::InProgress
        )
    }
}

/// Attempts that ended one way, per [`AttemptResult`] other than `Completed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptCounts {
    /// Busy.
    pub busy: u32,
    /// No answer.
    pub no_answer: u32,
    /// Voicemail or no acknowledgement.
    pub voicemail: u32,
    /// Error.
    pub error: u32,
}

impl AttemptCounts {
    /// The counter for a result (`None` for `Completed`).
    pub fn slot(&mut self, r: AttemptResult) -> Option<&mut u32> {
        match r {
            AttemptResult::Completed
            | AttemptResult::Rescheduled
            | AttemptResult::Abandoned
            | AttemptResult::Interrupted => None,
            AttemptResult::Busy => Some(&mut self.busy),
            AttemptResult::NoAnswer => Some(&mut self.no_answer),
            AttemptResult::Voicemail => Some(&mut self.voicemail),
            AttemptResult::Error => Some(&mut self.error),
        }
    }
}

/// How the first launch compared with the estimate given at registration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Punctuality {
    /// When the customer was first called (`processedAt`). `actualCallbackTime` is the
    /// wait, processedAt − createdAt in seconds, computed from it where it is shown.
    pub processed_at: DateTime<Utc>,
    /// Seconds late (positive) or early (negative) against `estimatedFor`.
    pub punctuality_secs: i64,
    /// Within the call target's tolerance of `estimatedFor`, early or late.
    pub was_punctual: bool,
    /// A fraction, 0..=1: 1 − |actual − estimated wait| / max(estimated wait, 60 s).
    pub estimate_percent_accuracy: f64,
}

/// One callback: everything the store keeps and the API shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    /// Identifier (`callback_request_id`).
    pub id: CallbackId,
    /// Registration order, unique and increasing across restarts: the FIFO key.
    pub seq: u64,
    /// Organization owning the call target.
    pub organization: String,
    /// Call target.
    pub call_target: String,
    /// Widget the request came through, if any.
    pub widget: Option<String>,
    /// The customer's number, E.164.
    pub number: String,
    /// ASAP, scheduled or next-day.
    pub kind: Kind,
    /// Where it is in its life.
    pub status: Status,
    /// API or SIP.
    pub source: Source,
    /// The `channel` given to the API (e.g. `mobile`, `chatbot`).
    pub channel: Option<String>,
    /// `user_data` given to the API: a JSON object.
    pub user_data: serde_json::Map<String, serde_json::Value>,
    /// SIP headers captured from the inbound call (name as configured, value).
    pub sip_headers: Vec<(String, String)>,
    /// When it was registered.
    pub requested_at: DateTime<Utc>,
    /// When the engine estimated, at registration, that the customer would be called.
    pub estimated_for: DateTime<Utc>,
    /// The ECBT given at registration, seconds.
    pub ecbt_secs: u64,
    /// Not released for dialling before this instant (minimum delay, retry delay,
    /// next-day delay, appointment).
    pub due_at: DateTime<Utc>,
    /// The appointment (scheduled callbacks).
    pub appointment: Option<DateTime<Utc>>,
    /// Attempts launched so far.
    pub attempts: u32,
    /// Failed attempts by result.
    pub failed: AttemptCounts,
    /// How the last attempt ended.
    pub last_result: Option<AttemptResult>,
    /// When the current (or last) attempt was released for dialling.
    pub launched_at: Option<DateTime<Utc>>,
    /// When the current (or last) attempt's agent leg connected.
    pub agent_connected_at: Option<DateTime<Utc>>,
    /// Set when the customer was first called.
    pub punctuality: Option<Punctuality>,
    /// When it reached a final status.
    pub finished_at: Option<DateTime<Utc>>,
    /// The inbound call that registered it (SIP), for its first attempt's call record.
    #[serde(default)]
    pub inbound: Option<InboundCall>,
    /// A retry: when the previous attempt ended and created this one (its record's
    /// `createdAt`).
    #[serde(default)]
    pub retry_created_at: Option<DateTime<Utc>>,
    /// While in progress: the node instance dialling it (several nodes on one database;
    /// `None` on a node alone).
    #[serde(default)]
    pub launched_by: Option<i64>,
}

impl Callback {
    /// `createdAt` of its first attempt: when holdless first learned of the call (the
    /// INVITE's arrival for a callback registered over SIP), else the registration.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.inbound
            .as_ref()
            .map_or(self.requested_at, |i| i.created_at)
    }

    /// `actualCallbackTime`: how long the customer waited, processedAt − createdAt,
    /// whole seconds; `None` until the customer is called.
    pub fn actual_callback_secs(&self) -> Option<u64> {
        let p = self.punctuality.as_ref()?;
        u64::try_from((p.processed_at - self.created_at()).num_seconds()).ok()
    }

    /// `source` as Mindful's records write it: `Phone:<dialled number>` for a callback
    /// registered by a caller, `CBWidget:<widget id>` for one registered through a widget;
    /// `None` when neither is known.
    pub fn source_label(&self) -> Option<String> {
        match (&self.inbound, &self.widget) {
            (Some(i), _) => Some(i.source()),
            (None, Some(w)) => Some(format!("CBWidget:{w}")),
            (None, None) => None,
        }
    }
}

str_enum! {
    /// Why a registration was refused: each rule has its own, recorded outcome.
    Refusal {
        /// The number is malformed or not allowed (country, length).
        InvalidNumber = "invalidNumber",
        /// A blocked prefix, or a per-minute rate above the maximum.
        MaxTollRateExceeded = "maxTollRateExceeded",
        /// A callback for this number is already pending on this call target (registered
        /// more than [`crate::callback::engine::DUPLICATE_REQUEST_WINDOW_SECS`] ago).
        DuplicateCallback = "duplicateCallback",
        /// The same number was registered on this call target moments ago (within
        /// [`crate::callback::engine::DUPLICATE_REQUEST_WINDOW_SECS`]): the request is a
        /// repeat of one being processed (Mindful's `DuplicateRequest`).
        DuplicateRequest = "duplicateRequest",
        /// Closed, and no next-business-day callback can be offered.
        OutsideHours = "outsideHours",
        /// The ECBT is above the call target's maximum.
        MaxEcbtExceeded = "maxEcbtExceeded",
        /// Pending plus waitlisted callbacks are at the call target's maximum.
        MaxRequestedExceeded = "maxRequestedCallbacksExceeded",
        /// The requested slot is fully booked.
        MaxScheduledCallsExceeded = "maxScheduledCallsExceeded",
        /// Next-business-day callbacks are at their cap.
        MaxNextDayExceeded = "maxNextDayCallbacksExceeded",
        /// The appointment time is not one of the offered timeslots.
        InvalidAppointment = "invalidAppointmentTime",
        /// The appointment time has already passed (Mindful's `AppointmentTimeInThePast`).
        AppointmentInThePast = "appointmentTimeInThePast",
        /// An appointment was asked of a call target that does not offer them.
        ScheduledNotOffered = "scheduledCallbacksNotOffered",
        /// The call target is disabled.
        TargetDisabled = "callTargetDisabled",
        /// No such call target.
        UnknownTarget = "unknownCallTarget",
    }
}

str_enum! {
    /// What a widget tells the flow (Mindful's published values).
    WidgetState {
        /// ASAP and scheduled callbacks are offered.
        OfferCallback = "offer_callback",
        /// Only ASAP (or next-business-day) callbacks are offered.
        OfferAsapCallback = "offer_asap_callback",
        /// Only scheduled callbacks are offered.
        OfferScheduledCallback = "offer_scheduled_callback",
        /// Open, but callbacks are not offered: show the wait time only.
        DisplayEwtOnly = "display_ewt_only",
        /// Closed, disabled, or the store is unreachable.
        PlatformUnavailable = "platform_unavailable",
    }
}

impl WidgetState {
    /// Whether a flow should offer a callback (anything else routes to an agent queue).
    pub fn offers_callback(self) -> bool {
        matches!(
            self,
            WidgetState::OfferCallback | WidgetState::OfferAsapCallback
        )
    }
}
