//! The callback engine: a sans-IO state machine deciding whether, when and for whom a
//! callback happens. Inputs are `handle_*(now, …)` calls (registrations, cancellations,
//! dialler events); outputs are polled: [`Engine::poll_launch`] (callbacks released for
//! dialling), [`Engine::poll_write`] (state changes the shell must make durable before it
//! acknowledges anything) and [`Engine::poll_timeout`] (when to call again). It never reads
//! the clock; `now` is wall-clock UTC because business hours and appointments are.
//!
//! Queues per call target: scheduled callbacks wait for their slot and go first when due;
//! every other callback waits in one first-in-first-out queue ordered by registration
//! (a retried callback keeps its place). A callback is released when it is due, the call
//! target is open (scheduled ones: at their slot regardless) and fewer than `pacing`
//! callbacks of the target are in progress. A canceled callback leaves every queue at once.

mod dispatch;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, Utc};

use super::config::CallbackSettings;
use super::ecbt::{Estimator, Load};
use super::model::{
    AttemptCounts, Callback, CallbackId, FirstParty, Kind, Refusal, Source, Status, WidgetState,
};
use super::number::NumberError;
use super::rank::RankIndex;
use super::record::{InboundCall, RecordEntry};
use super::slots;

pub use dispatch::{AttemptRecord, Launch, RestoreReport};

/// Most refused registrations recorded in the store per minute (all of them are counted
/// in metrics). A client hammering bad requests must not fill the disk: 1 000 a minute is
/// far above what real callers produce and caps the table at ~1.4 M rows a day.
pub const MAX_REFUSAL_RECORDS_PER_MINUTE: u32 = 1000;

/// A registration for a number registered on the same call target less than this many
/// seconds ago is a repeat of a request still being processed: Mindful's register-callback
/// documentation answers it `DuplicateRequest` ("this may take up to 10 seconds"). Later,
/// the number simply has a callback already (`duplicateCallback`).
pub const DUPLICATE_REQUEST_WINDOW_SECS: i64 = 10;

/// A call target as the engine sees it.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Identifier.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Its callback settings.
    pub settings: CallbackSettings,
}

/// A registration as asked for by the API or the SIP flow.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RegisterRequest {
    /// Call target.
    pub call_target: String,
    /// The number as given (normalized by the call target's rules).
    pub number: String,
    /// An appointment (one of the offered timeslots); `None` = ASAP.
    pub appointment: Option<DateTime<Utc>>,
    /// Widget the request came through.
    pub widget: Option<String>,
    /// API or SIP.
    pub source: Option<Source>,
    /// Free-form origin (`mobile`, `chatbot`).
    pub channel: Option<String>,
    /// `user_data` object.
    pub user_data: serde_json::Map<String, serde_json::Value>,
    /// Captured SIP headers (to send back on the agent leg).
    pub sip_headers: Vec<(String, String)>,
    /// The inbound call registering it (SIP), kept for the first attempt's call record.
    pub inbound: Option<InboundCall>,
}

/// A registration accepted (and queued as a write).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Registered {
    /// The new callback.
    pub callback: Callback,
    /// 1-based position in its queue.
    pub position: u64,
}

/// A registration refused, with the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refused {
    /// The recorded outcome.
    pub outcome: Refusal,
    /// What happened, for the flow's logs.
    pub detail: String,
}

/// A refused registration as recorded in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusalRecord {
    /// When.
    pub at: DateTime<Utc>,
    /// Call target asked for.
    pub call_target: String,
    /// Widget, if any.
    pub widget: Option<String>,
    /// The number as given (up to the raw-number limit).
    pub number: String,
    /// Why.
    pub outcome: Refusal,
    /// API or SIP.
    pub source: Source,
}

/// A state change to make durable.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert or replace the callback's row.
    Callback(Box<Callback>),
    /// A dialling attempt ended.
    Attempt(AttemptRecord),
    /// A registration was refused.
    Refusal(RefusalRecord),
    /// A call record (an attempt, or an inbound call that ended without a callback).
    Record(Box<RecordEntry>),
    /// A call target's learned ECBT state.
    Estimator {
        /// Call target.
        call_target: String,
        /// Its state.
        state: Estimator,
    },
}

/// What cancelling by number found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CancelOutcome {
    /// This pending callback was canceled.
    Canceled(CallbackId),
    /// No active callback for the number.
    NotFound,
    /// More than one active callback for the number: none was canceled.
    TooMany,
    /// The callback is being dialled and can no longer be canceled.
    Failed(CallbackId),
}

/// A callback and where it stands now.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatusView {
    /// The callback.
    pub callback: Callback,
    /// 1-based position in its queue (0 when in progress).
    pub position: u64,
    /// Seconds until it is expected to launch, from the current queue.
    pub estimated_wait_secs: u64,
}

/// What a widget of a call target should say now.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TargetView {
    /// The state.
    pub state: WidgetState,
    /// ASAP (or next-business-day) callbacks offered.
    pub offer_asap: bool,
    /// Scheduled callbacks offered.
    pub offer_scheduled: bool,
    /// ECBT in seconds when relevant.
    pub ewt: Option<u64>,
    /// Bookable slot starts.
    pub timeslots: Vec<DateTime<Utc>>,
}

/// Per-call-target numbers for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGauges {
    /// Call target.
    pub call_target: String,
    /// Pending callbacks (ASAP, scheduled, retries).
    pub pending: u64,
    /// Next-business-day callbacks waiting.
    pub waitlisted: u64,
    /// In progress.
    pub in_progress: u64,
    /// ECBT for a new ASAP callback now, seconds.
    pub ecbt_secs: u64,
}

/// Errors of dialler events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum EngineError {
    /// No active callback has this id.
    #[error("no active callback {0}")]
    UnknownCallback(String),
    /// The callback is not being dialled.
    #[error("callback {0} is not in progress")]
    NotInProgress(String),
}

/// Which queue a callback waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// A first scheduled attempt, at its slot (Unix seconds).
    Slot(i64),
    /// Everything else, by registration order.
    Fifo,
}

fn lane(cb: &Callback) -> Lane {
    match (cb.kind, cb.appointment) {
        (Kind::Scheduled, Some(t)) if cb.attempts == 0 => Lane::Slot(t.timestamp()),
        _ => Lane::Fifo,
    }
}

/// Release class: scheduled first attempts before everything else.
fn class(l: Lane) -> u8 {
    match l {
        Lane::Slot(_) => 0,
        Lane::Fifo => 1,
    }
}

#[derive(Debug)]
struct TargetState {
    cfg: TargetConfig,
    estimator: Estimator,
    /// Due and waiting for a free slot: (class, seq).
    ready: BTreeMap<(u8, u64), CallbackId>,
    /// With `launches_per_sec`: no launch before this instant.
    next_launch: Option<DateTime<Utc>>,
    /// Not due yet: (due, seq).
    delayed: BTreeMap<(DateTime<Utc>, u64), CallbackId>,
    /// Sequence numbers of queued FIFO-lane callbacks (queue length).
    fifo: BTreeSet<u64>,
    /// Their positions, in O(log n).
    fifo_rank: RankIndex,
    /// Queued first scheduled attempts: (slot, seq).
    sched: BTreeSet<(i64, u64)>,
    /// Active scheduled bookings per slot (Unix seconds).
    booked: BTreeMap<i64, u32>,
    in_progress: HashSet<CallbackId>,
    waitlisted: u64,
    /// Active callback per number.
    by_number: HashMap<String, CallbackId>,
}

impl TargetState {
    fn requested(&self) -> u64 {
        (self.fifo.len() + self.sched.len()) as u64
    }

    fn load(&self, ahead: u64) -> Load {
        let s = &self.cfg.settings;
        Load {
            ahead,
            in_progress: self.in_progress.len() as u64,
            pacing: u64::from(s.pacing),
            min_delay_secs: s.min_delay_secs,
            agent_first: s.first_party == FirstParty::Agent,
            margin: s.ecbt.margin,
        }
    }

    /// ECBT of a FIFO callback with `ahead` FIFO callbacks before it: scheduled callbacks
    /// whose slot comes before its estimated launch are counted ahead too (one pass).
    fn ecbt(&self, now: DateTime<Utc>, ahead: u64) -> u64 {
        let first = self.estimator.estimate(self.load(ahead));
        let horizon = (now + secs(first)).timestamp();
        let sched: u64 = self
            .booked
            .range(..=horizon)
            .map(|(_, n)| u64::from(*n))
            .sum();
        if sched == 0 {
            first
        } else {
            self.estimator.estimate(self.load(ahead + sched))
        }
    }
}

/// An accepted registration before it is queued.
#[derive(Debug, Clone)]
struct Decision {
    organization: String,
    number: String,
    kind: Kind,
    ecbt: u64,
    estimated_for: DateTime<Utc>,
    due: DateTime<Utc>,
    status: Status,
}

/// How an ASAP request would be served now.
#[derive(Debug, Clone, PartialEq)]
enum AsapPlan {
    /// Today, in the FIFO queue.
    Today { ecbt: u64 },
    /// The next business day.
    NextDay { ecbt: u64, due: DateTime<Utc> },
    /// Not offered; `ewt` is what the widget shows (`display_ewt_only` when open).
    Refuse {
        refused: Refused,
        ewt: Option<u64>,
        open: bool,
    },
}

fn secs(s: u64) -> Duration {
    Duration::seconds(
        i64::try_from(s)
            .unwrap_or(i64::MAX / 1000)
            .min(10 * 365 * 86400),
    )
}

fn refuse(outcome: Refusal, detail: impl Into<String>) -> Refused {
    Refused {
        outcome,
        detail: detail.into(),
    }
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    targets: BTreeMap<String, TargetState>,
    /// The call targets' ids, in `targets`' order (the launch decision walks them without
    /// copying a key per call).
    target_ids: std::sync::Arc<[String]>,
    callbacks: HashMap<CallbackId, Callback>,
    writes: VecDeque<Write>,
    /// (minute since the epoch, refusals recorded in it).
    refusal_window: (i64, u32),
    rng: fastrand::Rng,
    next_seq: u64,
    dialling: bool,
    /// This node's instance, stamped on what it launches (several nodes on one database).
    instance: Option<i64>,
    /// The other live node instances that take launches from this one.
    diallers: Vec<i64>,
}

impl Engine {
    /// An engine for these call targets; `seed` drives callback ids.
    pub fn new(targets: Vec<TargetConfig>, seed: u64) -> Self {
        let targets = targets
            .into_iter()
            .map(|cfg| {
                let st = TargetState {
                    estimator: Estimator::new(&cfg.settings.ecbt),
                    cfg,
                    ready: BTreeMap::new(),
                    next_launch: None,
                    delayed: BTreeMap::new(),
                    fifo: BTreeSet::new(),
                    fifo_rank: RankIndex::default(),
                    sched: BTreeSet::new(),
                    booked: BTreeMap::new(),
                    in_progress: HashSet::new(),
                    waitlisted: 0,
                    by_number: HashMap::new(),
                };
                (st.cfg.id.clone(), st)
            })
            .collect::<BTreeMap<String, TargetState>>();
        Engine {
            target_ids: targets.keys().cloned().collect(),
            targets,
            callbacks: HashMap::new(),
            writes: VecDeque::new(),
            refusal_window: (0, 0),
            rng: fastrand::Rng::with_seed(seed),
            next_seq: 1,
            dialling: false,
            instance: None,
            diallers: Vec::new(),
        }
    }

    /// Whether callbacks are released for dialling (a dialler is attached). Off, they
    /// wait in their queues: registration and the API work as usual.
    pub fn set_dialling(&mut self, on: bool) {
        self.dialling = on;
    }

    /// The node instance this engine runs on: what it launches is stamped with it
    /// (`launched_by`), so a later leader knows whose calls are still up.
    pub fn set_instance(&mut self, instance: i64) {
        self.instance = Some(instance);
    }

    /// The other live node instances that dial: launches are spread over them and this
    /// node, each to the one with the fewest callbacks in progress.
    pub fn set_diallers(&mut self, diallers: Vec<i64>) {
        self.diallers = diallers;
    }

    /// Active callbacks (pending, waitlisted, in progress).
    pub fn active(&self) -> usize {
        self.callbacks.len()
    }

    /// The call target's configuration.
    pub fn target(&self, id: &str) -> Option<&TargetConfig> {
        self.targets.get(id).map(|t| &t.cfg)
    }

    /// The next state change to make durable.
    pub fn poll_write(&mut self) -> Option<Write> {
        self.writes.pop_front()
    }

    /// Files a call record; it is made durable with the rest of the batch.
    pub fn handle_record(&mut self, entry: RecordEntry) {
        self.write(Write::Record(Box::new(entry)));
    }

    fn write(&mut self, w: Write) {
        if let Write::Refusal(r) = &w {
            let minute = r.at.timestamp().div_euclid(60);
            if self.refusal_window.0 != minute {
                self.refusal_window = (minute, 0);
            }
            if self.refusal_window.1 >= MAX_REFUSAL_RECORDS_PER_MINUTE {
                return;
            }
            self.refusal_window.1 += 1;
        }
        self.writes.push_back(w);
    }

    fn new_id(&mut self) -> CallbackId {
        format!("{:016x}{:016x}", self.rng.u64(..), self.rng.u64(..))
    }

    /// Registers a callback, or says which rule refuses it.
    pub fn handle_register(
        &mut self,
        now: DateTime<Utc>,
        req: RegisterRequest,
    ) -> Result<Registered, Refused> {
        match self.decide(now, &req) {
            Ok(d) => Ok(self.enqueue(now, req, d)),
            Err(refused) => {
                let number: String = req
                    .number
                    .chars()
                    .take(super::number::MAX_RAW_NUMBER)
                    .collect();
                self.write(Write::Refusal(RefusalRecord {
                    at: now,
                    call_target: req.call_target,
                    widget: req.widget,
                    number,
                    outcome: refused.outcome,
                    source: req.source.unwrap_or(Source::Api),
                }));
                Err(refused)
            }
        }
    }

    /// Every rule, in the order the issue lists them.
    fn decide(&self, now: DateTime<Utc>, req: &RegisterRequest) -> Result<Decision, Refused> {
        let t = self
            .targets
            .get(&req.call_target)
            .ok_or_else(|| refuse(Refusal::UnknownTarget, "no such call target"))?;
        let s = &t.cfg.settings;
        if !s.enabled {
            return Err(refuse(
                Refusal::TargetDisabled,
                "the call target is disabled",
            ));
        }
        let number = s.numbers.check(&req.number).map_err(|e: NumberError| {
            let outcome = if e.is_toll() {
                Refusal::MaxTollRateExceeded
            } else {
                Refusal::InvalidNumber
            };
            refuse(outcome, e.to_string())
        })?;
        if let Some(id) = t.by_number.get(&number) {
            let recent = self.callbacks.get(id).is_some_and(|c| {
                (now - c.requested_at).num_seconds() < DUPLICATE_REQUEST_WINDOW_SECS
            });
            return Err(if recent {
                refuse(
                    Refusal::DuplicateRequest,
                    format!(
                        "a callback request for this number is being processed; \
                         retry in {DUPLICATE_REQUEST_WINDOW_SECS} seconds"
                    ),
                )
            } else {
                refuse(
                    Refusal::DuplicateCallback,
                    "a callback for this number is already pending on this call target",
                )
            });
        }
        let d = |kind, ecbt, due, status| Decision {
            organization: s.organization.clone().unwrap_or_default(),
            number: number.clone(),
            kind,
            ecbt,
            estimated_for: now + secs(ecbt),
            due,
            status,
        };
        if let Some(at) = req.appointment {
            let (ecbt, estimated_for) = self.decide_scheduled(now, t, at)?;
            let mut d = d(Kind::Scheduled, ecbt, at, Status::Pending);
            d.estimated_for = estimated_for;
            return Ok(d);
        }
        match self.plan_asap(now, t) {
            AsapPlan::Today { ecbt } => Ok(d(
                Kind::Asap,
                ecbt,
                now + secs(s.min_delay_secs),
                Status::Pending,
            )),
            AsapPlan::NextDay { ecbt, due } => Ok(d(Kind::NextDay, ecbt, due, Status::Waitlisted)),
            AsapPlan::Refuse { refused, .. } => Err(refused),
        }
    }

    fn decide_scheduled(
        &self,
        now: DateTime<Utc>,
        t: &TargetState,
        at: DateTime<Utc>,
    ) -> Result<(u64, DateTime<Utc>), Refused> {
        // Returns the ECBT and `estimatedFor`: exactly the slot, plus the agent-leg connect
        // time when the agent is dialled first.
        let s = &t.cfg.settings;
        if at < now {
            return Err(refuse(
                Refusal::AppointmentInThePast,
                "appointment_time is in the past",
            ));
        }
        if !s.scheduled.enabled {
            return Err(refuse(
                Refusal::ScheduledNotOffered,
                "this call target does not offer scheduled callbacks",
            ));
        }
        let earliest = now + secs(s.min_delay_secs);
        if !slots::is_slot(&s.hours, &s.scheduled, now, earliest, at) {
            return Err(refuse(
                Refusal::InvalidAppointment,
                "appointment_time is not one of the widget's scheduled_timeslots",
            ));
        }
        if t.booked.get(&at.timestamp()).copied().unwrap_or(0) >= s.scheduled.max_per_slot {
            return Err(refuse(
                Refusal::MaxScheduledCallsExceeded,
                "this timeslot is fully booked",
            ));
        }
        if t.requested() >= u64::from(s.max_requested) {
            return Err(refuse(
                Refusal::MaxRequestedExceeded,
                "the call target has as many requested callbacks as it accepts",
            ));
        }
        let connect = if s.first_party == FirstParty::Agent {
            t.estimator.connect_secs.ceil() as u64
        } else {
            0
        };
        let wait = u64::try_from((at - now).num_seconds()).unwrap_or(0);
        Ok((wait + connect, at + secs(connect)))
    }

    /// How an ASAP request would be served now (shared by registration and widgets).
    fn plan_asap(&self, now: DateTime<Utc>, t: &TargetState) -> AsapPlan {
        let s = &t.cfg.settings;
        let full = t.requested() >= u64::from(s.max_requested);
        let full_refusal = || {
            refuse(
                Refusal::MaxRequestedExceeded,
                "the call target has as many requested callbacks as it accepts",
            )
        };
        let open_until = s.hours.open_until(now);
        if let Some(close) = open_until {
            let ecbt = t.ecbt(now, t.fifo.len() as u64);
            if ecbt > s.max_ecbt_secs {
                return AsapPlan::Refuse {
                    refused: refuse(
                        Refusal::MaxEcbtExceeded,
                        format!("ECBT {ecbt} s is above the maximum {} s", s.max_ecbt_secs),
                    ),
                    ewt: Some(ecbt),
                    open: true,
                };
            }
            if now + secs(ecbt) < close {
                if full {
                    return AsapPlan::Refuse {
                        refused: full_refusal(),
                        ewt: Some(ecbt),
                        open: true,
                    };
                }
                return AsapPlan::Today { ecbt };
            }
        }
        // Closed, or the callback would launch after closing: end-of-day handling.
        let open = open_until.is_some();
        let closed = |detail: &str| AsapPlan::Refuse {
            refused: refuse(Refusal::OutsideHours, detail),
            ewt: None,
            open,
        };
        if !s.next_day.enabled {
            return closed(if open {
                "the callback could not be made before closing time"
            } else {
                "the call target is closed"
            });
        }
        if full {
            return AsapPlan::Refuse {
                refused: full_refusal(),
                ewt: None,
                open,
            };
        }
        if t.waitlisted >= u64::from(s.next_day.max) {
            return AsapPlan::Refuse {
                refused: refuse(
                    Refusal::MaxNextDayExceeded,
                    "next-business-day callbacks are at their cap",
                ),
                ewt: None,
                open,
            };
        }
        let Some(opening) = s.hours.next_opening_after_close(now) else {
            return closed("the call target has no opening hours ahead");
        };
        let due = opening + secs(s.next_day.delay_secs);
        // Next-day callbacks launch together at `due`, paced like any others.
        let mut load = t.load(t.waitlisted);
        load.in_progress = 0;
        load.min_delay_secs = 0;
        let queue = t.estimator.estimate(load);
        let until_due = u64::try_from((due - now).num_seconds()).unwrap_or(0);
        AsapPlan::NextDay {
            ecbt: until_due + queue,
            due,
        }
    }

    fn enqueue(&mut self, now: DateTime<Utc>, req: RegisterRequest, d: Decision) -> Registered {
        let id = self.new_id();
        let seq = self.next_seq;
        self.next_seq += 1;
        let Decision {
            organization,
            number,
            kind,
            ecbt,
            estimated_for,
            due,
            status,
        } = d;
        let cb = Callback {
            id: id.clone(),
            seq,
            organization,
            call_target: req.call_target,
            widget: req.widget,
            number,
            kind,
            status,
            source: req.source.unwrap_or(Source::Api),
            channel: req.channel,
            user_data: req.user_data,
            sip_headers: req.sip_headers,
            requested_at: now,
            estimated_for,
            ecbt_secs: ecbt,
            due_at: due,
            appointment: req.appointment,
            attempts: 0,
            failed: AttemptCounts::default(),
            last_result: None,
            launched_at: None,
            agent_connected_at: None,
            punctuality: None,
            finished_at: None,
            inbound: req.inbound,
            retry_created_at: None,
            launched_by: None,
        };
        self.queue(now, &cb);
        let position = self.position(&cb);
        self.write(Write::Callback(Box::new(cb.clone())));
        self.callbacks.insert(id, cb.clone());
        Registered {
            callback: cb,
            position,
        }
    }

    /// Puts an active, not-in-progress callback into its target's queues and indexes.
    fn queue(&mut self, now: DateTime<Utc>, cb: &Callback) {
        let Some(t) = self.targets.get_mut(&cb.call_target) else {
            return;
        };
        let l = lane(cb);
        match l {
            Lane::Slot(slot) => {
                t.sched.insert((slot, cb.seq));
                *t.booked.entry(slot).or_insert(0) += 1;
            }
            Lane::Fifo => {
                t.fifo.insert(cb.seq);
                t.fifo_rank.insert(cb.seq);
            }
        }
        if cb.status == Status::Waitlisted {
            t.waitlisted += 1;
        }
        if cb.due_at <= now {
            t.ready.insert((class(l), cb.seq), cb.id.clone());
        } else {
            t.delayed.insert((cb.due_at, cb.seq), cb.id.clone());
        }
        t.by_number.insert(cb.number.clone(), cb.id.clone());
    }

    /// Takes a queued callback out of every queue (not out of `by_number`).
    fn unqueue(&mut self, cb: &Callback) {
        let Some(t) = self.targets.get_mut(&cb.call_target) else {
            return;
        };
        let l = lane(cb);
        match l {
            Lane::Slot(slot) => {
                t.sched.remove(&(slot, cb.seq));
                if let Some(n) = t.booked.get_mut(&slot) {
                    *n -= 1;
                    if *n == 0 {
                        t.booked.remove(&slot);
                    }
                }
            }
            Lane::Fifo => {
                t.fifo.remove(&cb.seq);
                t.fifo_rank.remove(cb.seq);
            }
        }
        if cb.status == Status::Waitlisted {
            t.waitlisted -= 1;
        }
        t.ready.remove(&(class(l), cb.seq));
        t.delayed.remove(&(cb.due_at, cb.seq));
    }

    /// 1-based position of a queued callback within its lane (0 when in progress).
    fn position(&self, cb: &Callback) -> u64 {
        let Some(t) = self.targets.get(&cb.call_target) else {
            return 0;
        };
        if cb.status == Status::InProgress {
            return 0;
        }
        let before = match lane(cb) {
            Lane::Slot(slot) => t.sched.range(..(slot, cb.seq)).count(),
            Lane::Fifo => t.fifo_rank.rank(cb.seq),
        };
        before as u64 + 1
    }

    /// The organization's active callbacks for a number (normalized by each of its call
    /// targets' rules), optionally on one call target.
    fn find(&self, org: &str, raw: &str, target: Option<&str>) -> Vec<&Callback> {
        let mut out: Vec<&Callback> = Vec::new();
        for t in self.targets.values() {
            let s = &t.cfg.settings;
            if s.organization.as_deref() != Some(org) || target.is_some_and(|x| x != t.cfg.id) {
                continue;
            }
            let Ok(n) = s.numbers.normalize(raw) else {
                continue;
            };
            if let Some(cb) = t.by_number.get(&n).and_then(|id| self.callbacks.get(id)) {
                out.push(cb);
            }
        }
        out.sort_by_key(|c| c.seq);
        out
    }

    /// The organization's active callbacks for a number, with position and live wait.
    pub fn status(&self, now: DateTime<Utc>, org: &str, raw_number: &str) -> Vec<StatusView> {
        self.find(org, raw_number, None)
            .into_iter()
            .map(|cb| self.view(now, cb))
            .collect()
    }

    /// One active callback of an organization by id.
    pub fn get(&self, now: DateTime<Utc>, org: &str, id: &str) -> Option<StatusView> {
        self.callbacks
            .get(id)
            .filter(|cb| cb.organization == org)
            .map(|cb| self.view(now, cb))
    }

    fn view(&self, now: DateTime<Utc>, cb: &Callback) -> StatusView {
        let position = self.position(cb);
        let wait = match (cb.status, self.targets.get(&cb.call_target)) {
            (Status::InProgress, _) | (_, None) => 0,
            (_, Some(t)) => match lane(cb) {
                Lane::Slot(_) => u64::try_from((cb.due_at - now).num_seconds()).unwrap_or(0),
                Lane::Fifo => {
                    let live = t.ecbt(now, position.saturating_sub(1));
                    let due = u64::try_from((cb.due_at - now).num_seconds()).unwrap_or(0);
                    live.max(due)
                }
            },
        };
        StatusView {
            callback: cb.clone(),
            position,
            estimated_wait_secs: wait,
        }
    }

    /// Cancels the organization's pending callback for a number.
    pub fn handle_cancel(
        &mut self,
        now: DateTime<Utc>,
        org: &str,
        raw_number: &str,
        call_target: Option<&str>,
    ) -> CancelOutcome {
        let found = self.find(org, raw_number, call_target);
        let cb = match found.as_slice() {
            [] => return CancelOutcome::NotFound,
            [cb] => (*cb).clone(),
            _ => return CancelOutcome::TooMany,
        };
        if cb.status == Status::InProgress {
            return CancelOutcome::Failed(cb.id);
        }
        self.unqueue(&cb);
        if let Some(t) = self.targets.get_mut(&cb.call_target) {
            t.by_number.remove(&cb.number);
            t.fifo_rank.forget(cb.seq);
        }
        let mut cb = cb;
        self.callbacks.remove(&cb.id);
        cb.status = Status::Canceled;
        cb.finished_at = Some(now);
        let id = cb.id.clone();
        self.write(Write::Callback(Box::new(cb)));
        CancelOutcome::Canceled(id)
    }

    /// What a widget on this call target should say now. `store_ok` false (the store is
    /// unreachable) makes every widget `platform_unavailable`.
    pub fn target_view(&self, now: DateTime<Utc>, call_target: &str, store_ok: bool) -> TargetView {
        let unavailable = TargetView {
            state: WidgetState::PlatformUnavailable,
            offer_asap: false,
            offer_scheduled: false,
            ewt: None,
            timeslots: vec![],
        };
        let Some(t) = self.targets.get(call_target) else {
            return unavailable;
        };
        let s = &t.cfg.settings;
        if !store_ok || !s.enabled {
            return unavailable;
        }
        let timeslots = if s.scheduled.enabled && t.requested() < u64::from(s.max_requested) {
            slots::offered(
                &s.hours,
                &s.scheduled,
                now,
                now + secs(s.min_delay_secs),
                &t.booked,
            )
        } else {
            vec![]
        };
        let offer_scheduled = !timeslots.is_empty();
        let (offer_asap, ewt, open) = match self.plan_asap(now, t) {
            AsapPlan::Today { ecbt } | AsapPlan::NextDay { ecbt, .. } => (true, Some(ecbt), true),
            AsapPlan::Refuse { ewt, open, .. } => (false, ewt, open),
        };
        let state = match (offer_asap, offer_scheduled, open) {
            (true, true, _) => WidgetState::OfferCallback,
            (true, false, _) => WidgetState::OfferAsapCallback,
            (false, true, _) => WidgetState::OfferScheduledCallback,
            (false, false, true) => WidgetState::DisplayEwtOnly,
            (false, false, false) => WidgetState::PlatformUnavailable,
        };
        TargetView {
            state,
            offer_asap,
            offer_scheduled,
            ewt,
            timeslots,
        }
    }

    /// When a next-business-day callback offered now would be expected to launch
    /// (`None` when an ASAP offer now is not a next-day one): a widget quotes it as a day
    /// and a time, not as a wait in minutes.
    pub fn next_day_at(&self, now: DateTime<Utc>, call_target: &str) -> Option<DateTime<Utc>> {
        let t = self.targets.get(call_target)?;
        match self.plan_asap(now, t) {
            AsapPlan::NextDay { ecbt, .. } => Some(now + secs(ecbt)),
            _ => None,
        }
    }

    /// Per-call-target counts for metrics.
    pub fn gauges(&self, now: DateTime<Utc>) -> Vec<TargetGauges> {
        self.targets
            .values()
            .map(|t| TargetGauges {
                call_target: t.cfg.id.clone(),
                pending: t.requested() - t.waitlisted,
                waitlisted: t.waitlisted,
                in_progress: t.in_progress.len() as u64,
                ecbt_secs: t.ecbt(now, t.fifo.len() as u64),
            })
            .collect()
    }
}
