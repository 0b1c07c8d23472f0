//! The callback service: the thin shell around the [`Engine`]. One dedicated thread owns
//! the engine and the [`Store`]; the HTTP API, the SIP flow and the dialler talk to it
//! through a bounded queue and get their answers on oneshot channels.
//!
//! Each turn of its loop takes every queued command (up to [`BATCH`]), reads the clock once,
//! hands the commands to the engine, releases due callbacks, then writes every resulting
//! state change in **one** transaction (group commit: one fsync for the whole batch) and
//! only then answers and hands launches to the dialler. If the write fails nothing is
//! acknowledged, the engine is rebuilt from what the store holds, and until the store
//! answers again every widget says `platform_unavailable` and registrations get
//! [`ServiceError::Unavailable`].
//!
//! With several nodes on one database ([`crate::cluster`]) the thread also beats the
//! node's heartbeat: the node that leads runs the engine as above; the others keep an
//! empty engine and forward every request to the leader ([`crate::cluster::forward`]),
//! serving only readiness and call-record pages (read from the shared store) themselves.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{mpsc, oneshot};

use super::attempt::AttemptReport;
use super::engine::{
    CancelOutcome, Engine, EngineError, Launch, Refused, RegisterRequest, Registered, StatusView,
    TargetConfig, TargetGauges, TargetView, Write,
};
use super::model::{AttemptResult, Callback};
use super::record::RecordEntry;
use crate::cluster::forward::{forward, Answer, Request};
use crate::store::{Dialler, NodeBeat, RecordCursor, RecordPage, Store, StoreError};

/// Depth of the command queue. Beyond it callers get [`ServiceError::Overloaded`] at once
/// (a 503) instead of queueing without bound; at ~10k commands/s this is ~0.4 s of work.
pub const QUEUE: usize = 4096;

/// Most commands handled per turn (and so per transaction).
pub const BATCH: usize = 512;

/// How often the loop wakes up with nothing to do: store health check and gauges.
pub const TICK: StdDuration = StdDuration::from_secs(2);

/// Refusal records older than this are deleted (hourly).
pub const REFUSAL_RETENTION_DAYS: i64 = 35;

/// The wall clock, injectable for tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Why the service could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ServiceError {
    /// The store is unreachable: nothing can be made durable.
    #[error("the callback store is unavailable")]
    Unavailable,
    /// Too many requests queued.
    #[error("the callback service is overloaded")]
    Overloaded,
    /// The service has stopped.
    #[error("the callback service has stopped")]
    Stopped,
}

/// A callback found by id: live (with position and wait) or from the store's history.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Found {
    /// Active: with its queue position and live wait.
    Active(Box<StatusView>),
    /// Finished (completed, failed, canceled), from the store.
    Finished(Box<Callback>),
}

type Reply<T> = oneshot::Sender<Result<T, ServiceError>>;

/// Widget views of call targets, each with when a next-business-day callback offered now
/// would be expected to launch (`None`: the offer is not a next-day one), and the instant
/// they were computed at.
pub type WidgetViews = (DateTime<Utc>, Vec<(TargetView, Option<DateTime<Utc>>)>);

enum Command {
    Register(Box<RegisterRequest>, Reply<Result<Registered, Refused>>),
    Cancel {
        org: String,
        number: String,
        call_target: Option<String>,
        reply: Reply<CancelOutcome>,
    },
    Status {
        org: String,
        number: String,
        reply: Reply<Vec<StatusView>>,
    },
    Get {
        org: String,
        id: String,
        reply: Reply<Option<Found>>,
    },
    Views {
        call_targets: Vec<String>,
        reply: Reply<(DateTime<Utc>, Vec<TargetView>)>,
    },
    WidgetViews {
        call_targets: Vec<String>,
        reply: Reply<WidgetViews>,
    },
    Ping(Reply<()>),
    AttachDialler(mpsc::UnboundedSender<Launch>),
    AgentConnected(String, Reply<Result<(), EngineError>>),
    AttemptEnded(
        String,
        AttemptResult,
        Option<Box<AttemptReport>>,
        Reply<Result<(), EngineError>>,
    ),
    Record(Box<RecordEntry>, Reply<()>),
    /// A launch the leader handed to this node's dialler.
    Dial(Box<Launch>, Reply<()>),
    /// The runtime could not hand a launch to this other node.
    DiallerUnreachable(i64),
    Records {
        org: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<RecordCursor>,
        limit: usize,
        reply: Reply<RecordPage>,
    },
    Stop(oneshot::Sender<()>),
}

/// Where this node's callback requests are decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Route {
    /// Here: this node leads (or is the only node).
    #[default]
    Local,
    /// At the leader, whose admin listener is at this address.
    Leader(String),
    /// Nowhere yet: no node leads (or the leader has no admin listener); requests are
    /// refused as when the store is down.
    NoLeader,
}

/// What the service thread publishes to the handles.
#[derive(Debug, Default)]
struct Shared {
    gauges: Mutex<Vec<TargetGauges>>,
    /// (call target, outcome) → registrations.
    registrations: Mutex<BTreeMap<(String, String), u64>>,
    store_up: AtomicBool,
    route: Mutex<Route>,
    /// Draining: this node gives up the lead and launches nothing.
    draining: AtomicBool,
    /// The other nodes that take launches (as of the last heartbeat).
    diallers: Mutex<Vec<Dialler>>,
    /// This node's instance, among several on one database.
    instance: Option<i64>,
}

/// A handle on the running service; cheap to clone.
#[derive(Clone)]
pub struct Service {
    tx: SyncSender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The store could not be read or written at start-up.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The thread could not be spawned.
    #[error("cannot start the callback service thread: {0}")]
    Thread(std::io::Error),
}

impl Service {
    /// Restores the engine from the store and starts the service thread.
    pub fn start(
        targets: Vec<TargetConfig>,
        store: Box<dyn Store>,
        seed: u64,
        clock: Clock,
    ) -> Result<Service, StartError> {
        Self::start_node(targets, store, seed, clock, None)
    }

    /// [`Service::start`] for a node among several on one database: `node` is how it
    /// announces itself. It restores the engine only if it leads; otherwise it forwards
    /// to the leader until it takes the lead.
    pub fn start_node(
        targets: Vec<TargetConfig>,
        mut store: Box<dyn Store>,
        seed: u64,
        clock: Clock,
        node: Option<NodeBeat>,
    ) -> Result<Service, StartError> {
        let now = clock();
        let shared = Arc::new(Shared {
            instance: node.as_ref().map(|n| n.instance),
            ..Shared::default()
        });
        let leads = match &node {
            None => true,
            Some(n) => {
                let l = store.heartbeat(n)?;
                *shared.route.lock().unwrap_or_else(PoisonError::into_inner) = route_of(&l);
                tracing::info!(node = %n.id, leads = l.me, leader = ?l.other, "node announced");
                l.me
            }
        };
        let mut engine = Engine::new(targets.clone(), seed);
        if let Some(n) = &node {
            engine.set_instance(n.instance);
        }
        if !leads {
            return Self::spawn(Worker {
                engine,
                store,
                targets,
                seed,
                clock,
                shared,
                healthy: true,
                leading: false,
                node,
                live: Vec::new(),
                diallers: Vec::new(),
                unreachable: Vec::new(),
                last_beat: Some(now),
                dialler: None,
                last_prune: None,
                last_ping: Some(now),
            });
        }
        let tolerance = |id: &str| {
            targets
                .iter()
                .find(|t| t.id == id)
                .map(|t| t.settings.punctual_within_secs)
        };
        let unpunctual = store.recheck_punctuality(&tolerance)?;
        if unpunctual > 0 {
            tracing::info!(
                unpunctual,
                "early launches stored as punctual are outside the tolerance: wasPunctual now false"
            );
        }
        let snap = store.load()?;
        let report = engine.restore(now, snap.callbacks, snap.estimators, snap.max_seq);
        let writes: Vec<Write> = std::iter::from_fn(|| engine.poll_write()).collect();
        store.apply(&writes)?;
        tracing::info!(
            loaded = report.loaded,
            interrupted = report.interrupted,
            orphaned = report.orphaned,
            "callbacks restored from the store"
        );
        if report.orphaned > 0 {
            tracing::warn!(
                orphaned = report.orphaned,
                "active callbacks belong to call targets no longer configured; left in the store"
            );
        }
        Self::spawn(Worker {
            engine,
            store,
            targets,
            seed,
            clock,
            shared,
            healthy: true,
            leading: true,
            node,
            live: Vec::new(),
            diallers: Vec::new(),
            unreachable: Vec::new(),
            last_beat: Some(now),
            dialler: None,
            last_prune: None,
            last_ping: Some(now),
        })
    }

    fn spawn(worker: Worker) -> Result<Service, StartError> {
        let shared = worker.shared.clone();
        shared.store_up.store(true, Ordering::Relaxed);
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("callbacks".into())
            .spawn(move || worker.run(rx))
            .map_err(StartError::Thread)?;
        Ok(Service { tx, shared })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ServiceError> {
        let (tx, rx) = oneshot::channel();
        match self.tx.try_send(make(tx)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(ServiceError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(ServiceError::Stopped),
        }
        rx.await.map_err(|_| ServiceError::Stopped)?
    }

    /// Where requests go now.
    pub fn route(&self) -> Route {
        self.shared
            .route
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The leader's admin address when another node leads.
    fn leader(&self) -> Option<String> {
        match self.route() {
            Route::Leader(addr) => Some(addr),
            Route::Local | Route::NoLeader => None,
        }
    }

    /// Forwards `req` to the leader at `addr`; `take` picks the answer of its kind.
    async fn remote<T>(
        &self,
        addr: &str,
        req: Request,
        take: impl FnOnce(Answer) -> Option<T>,
    ) -> Result<T, ServiceError> {
        let answer = forward(addr, &req).await?;
        take(answer).ok_or_else(|| {
            tracing::error!(leader = %addr, "the leader answered another request");
            ServiceError::Unavailable
        })
    }

    /// Answers a request another node forwarded, if this node leads (a node that does
    /// not lead refuses rather than forwarding again). A launch the leader hands over is
    /// taken by any node whose dialler is attached and that does not drain.
    pub async fn serve_forwarded(&self, req: Request) -> Result<Answer, ServiceError> {
        if let Request::Dial(launch) = req {
            self.call(|r| Command::Dial(launch, r)).await?;
            return Ok(Answer::Dial);
        }
        if self.route() != Route::Local {
            return Err(ServiceError::Unavailable);
        }
        Ok(match req {
            Request::Register(r) => Answer::Register(Box::new(self.register(*r).await?)),
            Request::Cancel {
                org,
                number,
                call_target,
            } => Answer::Cancel(self.cancel(&org, &number, call_target.as_deref()).await?),
            Request::Status { org, number } => Answer::Status(self.status(&org, &number).await?),
            Request::Get { org, id } => Answer::Get(self.get(&org, &id).await?),
            Request::Views(t) => Answer::Views(self.views(t).await?),
            Request::WidgetViews(t) => Answer::WidgetViews(self.widget_views(t).await?),
            Request::AgentConnected(id) => Answer::Engine(self.agent_connected(&id).await?),
            Request::AttemptEnded { id, result, report } => Answer::Engine(
                self.call(|r| Command::AttemptEnded(id, result, report, r))
                    .await?,
            ),
            Request::Record(entry) => {
                self.record(*entry).await?;
                Answer::Record
            }
            Request::Dial(_) => Answer::Dial, // taken above
        })
    }

    /// Whether this node dials `launch` itself (the leader stamps each launch with the
    /// node instance to dial it).
    pub fn dials_here(&self, launch: &Launch) -> bool {
        launch.node.is_none() || launch.node == self.shared.instance
    }

    /// Where to hand a launch stamped for another node instance: its admin listener, if
    /// it still takes launches.
    pub fn dialler_address(&self, instance: i64) -> Option<String> {
        self.shared
            .diallers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|d| d.instance == instance)
            .map(|d| d.admin.clone())
    }

    /// A launch could not be handed to node `instance`: launch nothing more there until
    /// the next heartbeat (the caller then ends the attempt as interrupted).
    pub fn dialler_unreachable(&self, instance: i64) {
        let _ = self.tx.send(Command::DiallerUnreachable(instance));
    }

    /// Starts draining: this node gives up the lead at its next heartbeat (at once) and
    /// launches no new callback.
    pub fn drain(&self) {
        self.shared.draining.store(true, Ordering::Relaxed);
    }

    /// Whether [`Service::drain`] was called.
    pub fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// Registers a callback (durable when this returns `Ok(Ok(_))`).
    pub async fn register(
        &self,
        req: RegisterRequest,
    ) -> Result<Result<Registered, Refused>, ServiceError> {
        if let Some(addr) = self.leader() {
            return self
                .remote(&addr, Request::Register(Box::new(req)), |a| match a {
                    Answer::Register(r) => Some(*r),
                    _ => None,
                })
                .await;
        }
        self.call(|r| Command::Register(Box::new(req), r)).await
    }

    /// Cancels an organization's pending callback for a number.
    pub async fn cancel(
        &self,
        org: &str,
        number: &str,
        call_target: Option<&str>,
    ) -> Result<CancelOutcome, ServiceError> {
        if let Some(addr) = self.leader() {
            let req = Request::Cancel {
                org: org.into(),
                number: number.into(),
                call_target: call_target.map(String::from),
            };
            return self
                .remote(&addr, req, |a| match a {
                    Answer::Cancel(r) => Some(r),
                    _ => None,
                })
                .await;
        }
        self.call(|reply| Command::Cancel {
            org: org.into(),
            number: number.into(),
            call_target: call_target.map(String::from),
            reply,
        })
        .await
    }

    /// An organization's active callbacks for a number.
    pub async fn status(&self, org: &str, number: &str) -> Result<Vec<StatusView>, ServiceError> {
        if let Some(addr) = self.leader() {
            let req = Request::Status {
                org: org.into(),
                number: number.into(),
            };
            return self
                .remote(&addr, req, |a| match a {
                    Answer::Status(r) => Some(r),
                    _ => None,
                })
                .await;
        }
        self.call(|reply| Command::Status {
            org: org.into(),
            number: number.into(),
            reply,
        })
        .await
    }

    /// One of an organization's callbacks by id, active or finished.
    pub async fn get(&self, org: &str, id: &str) -> Result<Option<Found>, ServiceError> {
        if let Some(addr) = self.leader() {
            let req = Request::Get {
                org: org.into(),
                id: id.into(),
            };
            return self
                .remote(&addr, req, |a| match a {
                    Answer::Get(r) => Some(r),
                    _ => None,
                })
                .await;
        }
        self.call(|reply| Command::Get {
            org: org.into(),
            id: id.into(),
            reply,
        })
        .await
    }

    /// Widget views of call targets, and the instant they were computed at.
    pub async fn views(
        &self,
        call_targets: Vec<String>,
    ) -> Result<(DateTime<Utc>, Vec<TargetView>), ServiceError> {
        if let Some(addr) = self.leader() {
            let req = Request::Views(call_targets.clone());
            let got = self
                .remote(&addr, req, |a| match a {
                    Answer::Views(r) => Some(r),
                    _ => None,
                })
                .await;
            if let Ok(v) = got {
                return Ok(v);
            }
            // The leader is out of reach: this node's own (refusing) engine answers
            // `platform_unavailable`.
        }
        self.call(|reply| Command::Views {
            call_targets,
            reply,
        })
        .await
    }

    /// [`Service::views`] with the next-business-day launch of each, for messages that
    /// quote it as a day and a time.
    pub async fn widget_views(
        &self,
        call_targets: Vec<String>,
    ) -> Result<WidgetViews, ServiceError> {
        if let Some(addr) = self.leader() {
            let req = Request::WidgetViews(call_targets.clone());
            let got = self
                .remote(&addr, req, |a| match a {
                    Answer::WidgetViews(r) => Some(r),
                    _ => None,
                })
                .await;
            if let Ok(v) = got {
                return Ok(v);
            }
        }
        self.call(|reply| Command::WidgetViews {
            call_targets,
            reply,
        })
        .await
    }

    /// Ok when the store answers (readiness).
    pub async fn ping(&self) -> Result<(), ServiceError> {
        self.call(Command::Ping).await
    }

    /// Starts releasing due callbacks to the returned receiver (the dialler). Until this is
    /// called, callbacks are registered and queued but never dialled. Attaching again
    /// replaces the previous dialler.
    pub fn attach_dialler(&self) -> Result<mpsc::UnboundedReceiver<Launch>, ServiceError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.tx
            .send(Command::AttachDialler(tx))
            .map_err(|_| ServiceError::Stopped)?;
        Ok(rx)
    }

    /// The dialler: a callback's agent leg answered.
    pub async fn agent_connected(&self, id: &str) -> Result<Result<(), EngineError>, ServiceError> {
        if let Some(addr) = self.leader() {
            return self
                .remote(&addr, Request::AgentConnected(id.into()), engine_answer)
                .await;
        }
        self.call(|r| Command::AgentConnected(id.into(), r)).await
    }

    /// The dialler: an attempt ended.
    pub async fn attempt_ended(
        &self,
        id: &str,
        result: AttemptResult,
    ) -> Result<Result<(), EngineError>, ServiceError> {
        self.ended(id, result, None).await
    }

    /// The dialler: an attempt ended, with what it saw of it (the attempt's call record is
    /// filed with the outcome, in the same commit).
    pub async fn attempt_report(
        &self,
        id: &str,
        result: AttemptResult,
        report: AttemptReport,
    ) -> Result<Result<(), EngineError>, ServiceError> {
        self.ended(id, result, Some(Box::new(report))).await
    }

    async fn ended(
        &self,
        id: &str,
        result: AttemptResult,
        report: Option<Box<AttemptReport>>,
    ) -> Result<Result<(), EngineError>, ServiceError> {
        if let Some(addr) = self.leader() {
            let req = Request::AttemptEnded {
                id: id.into(),
                result,
                report,
            };
            return self.remote(&addr, req, engine_answer).await;
        }
        self.call(|r| Command::AttemptEnded(id.into(), result, report, r))
            .await
    }

    /// Files a call record (an attempt, or an inbound call that ended without a callback);
    /// durable when this returns `Ok`, committed with the rest of its batch.
    pub async fn record(&self, entry: RecordEntry) -> Result<(), ServiceError> {
        if let Some(addr) = self.leader() {
            return self
                .remote(&addr, Request::Record(Box::new(entry)), |a| match a {
                    Answer::Record => Some(()),
                    _ => None,
                })
                .await;
        }
        self.call(|r| Command::Record(Box::new(entry), r)).await
    }

    /// One page (at most `limit` records) of an organization's call records that ended in
    /// `[from, to)`, after `after`, in `(endedAt, id)` order.
    pub async fn records_page(
        &self,
        org: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage, ServiceError> {
        self.call(|reply| Command::Records {
            org: org.into(),
            from,
            to,
            after,
            limit,
            reply,
        })
        .await
    }

    /// Finishes the current batch and stops the thread (the store is closed cleanly).
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Whether the last store operation succeeded.
    pub fn store_up(&self) -> bool {
        self.shared.store_up.load(Ordering::Relaxed)
    }

    /// Prometheus text for the callback engine's metrics.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let gauges = self
            .shared
            .gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        type Pick = fn(&TargetGauges) -> u64;
        let series: [(&str, &str, Pick); 4] = [
            (
                "holdless_callbacks_pending",
                "Callbacks waiting to be dialled (ASAP, scheduled, retries)",
                |g| g.pending,
            ),
            (
                "holdless_callbacks_waitlisted",
                "Next-business-day callbacks waiting for the opening",
                |g| g.waitlisted,
            ),
            (
                "holdless_callbacks_in_progress",
                "Callbacks being dialled",
                |g| g.in_progress,
            ),
            (
                "holdless_callback_ecbt_seconds",
                "Estimated callback time for a new ASAP callback",
                |g| g.ecbt_secs,
            ),
        ];
        for (name, help, pick) in series {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for g in &gauges {
                out.push_str(&format!(
                    "{name}{{call_target=\"{}\"}} {}\n",
                    label(&g.call_target),
                    pick(g)
                ));
            }
        }
        let regs = self
            .shared
            .registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        out.push_str("# HELP holdless_callback_registrations_total Registrations by outcome\n");
        out.push_str("# TYPE holdless_callback_registrations_total counter\n");
        for ((t, o), n) in regs.iter() {
            out.push_str(&format!(
                "holdless_callback_registrations_total{{call_target=\"{}\",outcome=\"{}\"}} {n}\n",
                label(t),
                label(o)
            ));
        }
        out.push_str("# HELP holdless_store_up Whether the callback store answers\n");
        out.push_str("# TYPE holdless_store_up gauge\n");
        out.push_str(&format!(
            "holdless_store_up {}\n",
            u8::from(self.store_up())
        ));
        out
    }
}

fn engine_answer(a: Answer) -> Option<Result<(), EngineError>> {
    match a {
        Answer::Engine(r) => Some(r),
        _ => None,
    }
}

/// The route a heartbeat's answer gives.
fn route_of(l: &crate::store::Leadership) -> Route {
    match (&l.me, &l.other) {
        (true, _) => Route::Local,
        (false, Some((_, Some(addr)))) => Route::Leader(addr.clone()),
        (false, Some((_, None))) | (false, None) => Route::NoLeader,
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What to answer once the batch is (or is not) durable.
type Deferred = Box<dyn FnOnce(bool) + Send>;

struct Worker {
    engine: Engine,
    store: Box<dyn Store>,
    targets: Vec<TargetConfig>,
    seed: u64,
    clock: Clock,
    shared: Arc<Shared>,
    healthy: bool,
    /// This node runs the engine (always, for a node alone on its store).
    leading: bool,
    /// How this node announces itself, among several on one database.
    node: Option<NodeBeat>,
    /// The node instances alive at the last heartbeat.
    live: Vec<i64>,
    /// The other nodes that take launches, at the last heartbeat.
    diallers: Vec<Dialler>,
    /// Diallers a launch could not be handed to, left out until they beat again.
    unreachable: Vec<i64>,
    last_beat: Option<DateTime<Utc>>,
    dialler: Option<mpsc::UnboundedSender<Launch>>,
    last_prune: Option<DateTime<Utc>>,
    last_ping: Option<DateTime<Utc>>,
}

fn answer<T: Send + 'static>(reply: Reply<T>, value: T) -> Deferred {
    Box::new(move |ok| {
        let _ = reply.send(if ok {
            Ok(value)
        } else {
            Err(ServiceError::Unavailable)
        });
    })
}

impl Worker {
    fn run(mut self, rx: Receiver<Command>) {
        let mut stop: Option<oneshot::Sender<()>> = None;
        while stop.is_none() {
            let wait = self.wait();
            let mut batch = Vec::new();
            match rx.recv_timeout(wait) {
                Ok(c) => batch.push(c),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            let now = (self.clock)();
            self.housekeeping(now);
            let mut deferred: Vec<Deferred> = Vec::with_capacity(batch.len());
            for cmd in batch {
                match cmd {
                    Command::Stop(tx) => stop = Some(tx),
                    cmd => self.handle(now, cmd, &mut deferred),
                }
            }
            let mut launches = Vec::new();
            let draining = self.shared.draining.load(Ordering::Relaxed);
            if self.healthy && self.leading && !draining && self.dialler.is_some() {
                while let Some(l) = self.engine.poll_launch(now) {
                    launches.push(l);
                }
            }
            let ok = self.commit(now);
            // The gauges first: an answered request is seen in /metrics at once.
            self.publish(now);
            for d in deferred {
                d(ok);
            }
            if ok && !launches.is_empty() {
                self.hand_over(now, launches);
                self.publish(now);
            }
        }
        // Whatever the last turn produced is already committed; close the store.
        drop(self.store);
        if let Some(tx) = stop {
            let _ = tx.send(());
        }
        tracing::info!("callback service stopped");
    }

    /// Until the engine's next deadline, at most one tick (or heartbeat).
    fn wait(&self) -> StdDuration {
        let now = (self.clock)();
        let tick = self.node.as_ref().map_or(TICK, |n| (n.lease / 3).min(TICK));
        match self.engine.poll_timeout(now) {
            Some(t) if t <= now => StdDuration::ZERO,
            Some(t) => (t - now).to_std().unwrap_or(tick).min(tick),
            None => tick,
        }
    }

    /// The other nodes to spread launches over: those that dial, less any that just
    /// failed to take one.
    fn reachable_diallers(&self) -> Vec<i64> {
        self.diallers
            .iter()
            .map(|d| d.instance)
            .filter(|i| !self.unreachable.contains(i))
            .collect()
    }

    /// Hands a launch from the leader to this node's dialler, unless it drains or has none.
    fn dial_here(&mut self, launch: Launch) -> Result<(), ServiceError> {
        if self.shared.draining.load(Ordering::Relaxed) {
            return Err(ServiceError::Unavailable);
        }
        match &self.dialler {
            Some(d) if d.send(launch).is_ok() => Ok(()),
            _ => Err(ServiceError::Unavailable),
        }
    }

    /// Announces the node, and takes or gives up the lead as the store says.
    fn beat(&mut self, now: DateTime<Utc>) {
        let Some(node) = self.node.as_mut() else {
            return;
        };
        let draining = self.shared.draining.load(Ordering::Relaxed);
        node.lead = !draining;
        node.dials = !draining && self.dialler.is_some();
        let node = node.clone();
        self.last_beat = Some(now);
        let l = match self.store.heartbeat(&node) {
            Ok(l) => l,
            Err(err) => {
                if self.healthy {
                    tracing::error!(error = %err, "node heartbeat failed: callbacks unavailable until the store answers");
                }
                self.set_route(Route::NoLeader);
                if self.leading {
                    self.lose_lead(now);
                }
                self.fail(now);
                return;
            }
        };
        self.live = l.live.clone();
        self.diallers = l.diallers.clone();
        self.unreachable.clear();
        *self
            .shared
            .diallers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = l.diallers.clone();
        if l.me && !self.leading {
            match self.reload(now) {
                Ok(()) => {
                    self.leading = true;
                    tracing::info!(node = %node.id, callbacks = self.engine.active(), "this node leads: callbacks loaded");
                }
                Err(err) => {
                    tracing::error!(error = %err, "taking the lead failed: loading the callbacks");
                    self.fail(now);
                    return;
                }
            }
        } else if !l.me && self.leading {
            self.lose_lead(now);
        } else if l.me {
            self.engine.set_diallers(self.reachable_diallers());
            let live = &self.live;
            let gone = self
                .engine
                .handle_instances_gone(now, &|i| live.contains(&i));
            if gone > 0 {
                tracing::warn!(
                    calls = gone,
                    "a node died with callbacks in progress: their attempts end as errors"
                );
            }
        }
        if let (false, Some((leader, None))) = (l.me, &l.other) {
            if self.route_is(&Route::Local) || !self.route_is(&Route::NoLeader) {
                tracing::warn!(%leader, "the leading node has no [admin] listen address: requests cannot be forwarded to it");
            }
        }
        self.set_route(route_of(&l));
    }

    fn route_is(&self, route: &Route) -> bool {
        *self
            .shared
            .route
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            == *route
    }

    fn set_route(&self, route: Route) {
        let mut r = self
            .shared
            .route
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *r != route {
            tracing::info!(?route, "callback requests now go here");
        }
        *r = route;
    }

    /// Another node leads now: forget the engine (the store has everything committed).
    fn lose_lead(&mut self, now: DateTime<Utc>) {
        tracing::warn!("this node no longer leads: requests go to the leader");
        self.leading = false;
        self.last_beat = None; // learn the new leader at once
        self.set_route(Route::NoLeader);
        self.engine = self.fresh_engine(now);
    }

    fn handle(&mut self, now: DateTime<Utc>, cmd: Command, out: &mut Vec<Deferred>) {
        let cmd = match cmd {
            Command::Dial(launch, reply) => return drop(reply.send(self.dial_here(*launch))),
            Command::DiallerUnreachable(instance) => {
                tracing::warn!(
                    instance,
                    "a node did not take a launch: none handed to it until the next heartbeat"
                );
                self.unreachable.push(instance);
                return self.engine.set_diallers(self.reachable_diallers());
            }
            cmd => cmd,
        };
        if !self.healthy {
            return self.refuse(now, cmd);
        }
        if !self.leading {
            return self.follow(now, cmd);
        }
        let e = &mut self.engine;
        match cmd {
            Command::Register(req, reply) => {
                let target = req.call_target.clone();
                let r = e.handle_register(now, *req);
                let outcome = match &r {
                    Ok(reg) => match reg.callback.kind {
                        super::Kind::Asap => "registered",
                        super::Kind::Scheduled => "registeredScheduled",
                        super::Kind::NextDay => "registeredNextDay",
                    },
                    Err(refused) => refused.outcome.as_str(),
                };
                let shared = self.shared.clone();
                out.push(Box::new(move |ok| {
                    if ok {
                        let mut m = shared
                            .registrations
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        *m.entry((target, outcome.to_owned())).or_insert(0) += 1;
                    }
                    let _ = reply.send(if ok {
                        Ok(r)
                    } else {
                        Err(ServiceError::Unavailable)
                    });
                }));
            }
            Command::Cancel {
                org,
                number,
                call_target,
                reply,
            } => {
                let r = e.handle_cancel(now, &org, &number, call_target.as_deref());
                out.push(answer(reply, r));
            }
            Command::Status { org, number, reply } => {
                out.push(answer(reply, e.status(now, &org, &number)));
            }
            Command::Get { org, id, reply } => {
                let found = match self.engine.get(now, &org, &id) {
                    Some(v) => Ok(Some(Found::Active(Box::new(v)))),
                    None => match self.store.get(&id) {
                        Ok(cb) => Ok(cb
                            .filter(|c| c.organization == org)
                            .map(|c| Found::Finished(Box::new(c)))),
                        Err(err) => {
                            tracing::error!(error = %err, "store read failed");
                            Err(ServiceError::Unavailable)
                        }
                    },
                };
                let _ = reply.send(found);
            }
            Command::Views {
                call_targets,
                reply,
            } => {
                let views = call_targets
                    .iter()
                    .map(|t| e.target_view(now, t, true))
                    .collect();
                out.push(answer(reply, (now, views)));
            }
            Command::WidgetViews {
                call_targets,
                reply,
            } => {
                let views = call_targets
                    .iter()
                    .map(|t| (e.target_view(now, t, true), e.next_day_at(now, t)))
                    .collect();
                out.push(answer(reply, (now, views)));
            }
            Command::Ping(reply) => {
                let r = self.store.ping().map_err(|err| {
                    tracing::warn!(error = %err, "store ping failed");
                    ServiceError::Unavailable
                });
                if r.is_err() {
                    self.fail(now);
                }
                let _ = reply.send(r);
            }
            Command::AttachDialler(tx) => {
                self.dialler = Some(tx);
                self.engine.set_dialling(true);
            }
            Command::AgentConnected(id, reply) => {
                let r = self.engine.handle_agent_connected(now, &id);
                out.push(answer(reply, r));
            }
            Command::AttemptEnded(id, result, report, reply) => {
                let r = self
                    .engine
                    .handle_attempt_report(now, &id, result, report.map(|r| *r));
                out.push(answer(reply, r));
            }
            Command::Record(entry, reply) => {
                self.engine.handle_record(*entry);
                out.push(answer(reply, ()));
            }
            Command::Records {
                org,
                from,
                to,
                after,
                limit,
                reply,
            } => {
                let _ = reply.send(self.records(&org, from, to, after.as_ref(), limit));
            }
            Command::Stop(_) => {}
            Command::Dial(..) | Command::DiallerUnreachable(_) => {} // taken above
        }
    }

    /// A page of call records from the store.
    fn records(
        &mut self,
        org: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage, ServiceError> {
        self.store
            .records_page(org, from, to, after, limit)
            .map_err(|err| {
                tracing::error!(error = %err, "store read failed");
                ServiceError::Unavailable
            })
    }

    /// While another node leads (requests reach this thread only when the leader is out
    /// of reach): readiness and call records from the shared store; the rest refused.
    fn follow(&mut self, now: DateTime<Utc>, cmd: Command) {
        match cmd {
            Command::Ping(reply) => {
                let r = self.store.ping().map_err(|err| {
                    tracing::warn!(error = %err, "store ping failed");
                    ServiceError::Unavailable
                });
                let _ = reply.send(r);
            }
            Command::Records {
                org,
                from,
                to,
                after,
                limit,
                reply,
            } => {
                let _ = reply.send(self.records(&org, from, to, after.as_ref(), limit));
            }
            cmd => self.refuse(now, cmd),
        }
    }

    /// While the store is down: widgets say `platform_unavailable`, the rest is refused.
    fn refuse(&mut self, now: DateTime<Utc>, cmd: Command) {
        const DOWN: ServiceError = ServiceError::Unavailable;
        match cmd {
            Command::Views {
                call_targets,
                reply,
            } => {
                let views = call_targets
                    .iter()
                    .map(|t| self.engine.target_view(now, t, false))
                    .collect();
                let _ = reply.send(Ok((now, views)));
            }
            Command::WidgetViews {
                call_targets,
                reply,
            } => {
                let views = call_targets
                    .iter()
                    .map(|t| (self.engine.target_view(now, t, false), None))
                    .collect();
                let _ = reply.send(Ok((now, views)));
            }
            Command::AttachDialler(tx) => {
                self.dialler = Some(tx);
                self.engine.set_dialling(true);
            }
            Command::Register(_, r) => drop(r.send(Err(DOWN))),
            Command::Cancel { reply, .. } => drop(reply.send(Err(DOWN))),
            Command::Status { reply, .. } => drop(reply.send(Err(DOWN))),
            Command::Get { reply, .. } => drop(reply.send(Err(DOWN))),
            Command::Ping(r) => drop(r.send(Err(DOWN))),
            Command::Record(entry, r) => {
                tracing::warn!(id = %entry.record.id, "store unavailable: call record lost");
                drop(r.send(Err(DOWN)))
            }
            Command::Records { reply, .. } => drop(reply.send(Err(DOWN))),
            Command::AgentConnected(_, r) | Command::AttemptEnded(_, _, _, r) => {
                // The dialler's report is lost with the store; the restart path treats an
                // in-progress callback as an interrupted attempt.
                drop(r.send(Err(DOWN)))
            }
            Command::Stop(_) => {}
            Command::Dial(..) | Command::DiallerUnreachable(_) => {} // taken in handle()
        }
    }

    /// Writes everything the engine produced; on failure rebuilds the engine.
    fn commit(&mut self, now: DateTime<Utc>) -> bool {
        let writes: Vec<Write> = std::iter::from_fn(|| self.engine.poll_write()).collect();
        if writes.is_empty() || !self.healthy {
            return self.healthy;
        }
        match self.store.apply(&writes) {
            Ok(()) => true,
            Err(StoreError::NotLeader) => {
                tracing::error!(
                    writes = writes.len(),
                    "another node took the lead: this batch was not written, nothing acknowledged"
                );
                self.lose_lead(now);
                false
            }
            Err(err) => {
                tracing::error!(error = %err, writes = writes.len(), "store write failed: nothing acknowledged");
                self.fail(now);
                false
            }
        }
    }

    /// Marks the store down and forgets uncommitted state.
    fn fail(&mut self, now: DateTime<Utc>) {
        self.healthy = false;
        self.shared.store_up.store(false, Ordering::Relaxed);
        self.engine = self.fresh_engine(now);
    }

    /// Health check while down (rebuilds from the store when it answers) and pruning.
    fn housekeeping(&mut self, now: DateTime<Utc>) {
        if let Some(n) = &self.node {
            let every = Duration::from_std(n.lease / 3).unwrap_or_default();
            if self.last_beat.is_none_or(|t| now - t >= every) {
                self.beat(now);
            }
        }
        if !self.healthy {
            if self.store.ping().is_ok() && (!self.leading || self.reload(now).is_ok()) {
                tracing::info!("store reachable again: callbacks reloaded");
                self.healthy = true;
                self.shared.store_up.store(true, Ordering::Relaxed);
            }
            return;
        }
        if self
            .last_ping
            .is_none_or(|t| now - t >= Duration::from_std(TICK).unwrap_or_default())
        {
            self.last_ping = Some(now);
            if let Err(err) = self.store.ping() {
                tracing::error!(error = %err, "store check failed: callbacks unavailable until it answers");
                self.fail(now);
                return;
            }
        }
        let due = self
            .last_prune
            .is_none_or(|t| now - t >= Duration::hours(1));
        if due {
            self.last_prune = Some(now);
            match self
                .store
                .prune_refusals(now - Duration::days(REFUSAL_RETENTION_DAYS))
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "old refusal records pruned"),
                Err(err) => tracing::warn!(error = %err, "pruning refusal records failed"),
            }
        }
    }

    /// An empty engine (stamping this node's instance on its launches).
    fn fresh_engine(&self, now: DateTime<Utc>) -> Engine {
        let mut engine = Engine::new(
            self.targets.clone(),
            self.seed ^ now.timestamp_millis() as u64,
        );
        if let Some(n) = &self.node {
            engine.set_instance(n.instance);
        }
        engine
    }

    fn reload(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let snap = self.store.load()?;
        let mut engine = self.fresh_engine(now);
        let live = &self.live;
        let rep = engine.restore_alive(now, snap.callbacks, snap.estimators, snap.max_seq, &|i| {
            live.contains(&i)
        });
        if rep.dialled_elsewhere > 0 {
            tracing::info!(
                calls = rep.dialled_elsewhere,
                "callbacks still being dialled by another node: left to it"
            );
        }
        engine.set_dialling(self.dialler.is_some());
        engine.set_diallers(self.reachable_diallers());
        let writes: Vec<Write> = std::iter::from_fn(|| engine.poll_write()).collect();
        self.store.apply(&writes)?;
        self.engine = engine;
        Ok(())
    }

    /// Sends committed launches to the dialler; if it is gone, the attempts end as
    /// interrupted (queued again, committed next turn) and dialling stops.
    fn hand_over(&mut self, now: DateTime<Utc>, launches: Vec<Launch>) {
        for l in launches {
            let sent = self
                .dialler
                .as_ref()
                .is_some_and(|d| d.send(l.clone()).is_ok());
            if !sent {
                if self.dialler.take().is_some() {
                    tracing::error!(
                        "the dialler is gone: callbacks stay queued until one attaches"
                    );
                    self.engine.set_dialling(false);
                }
                let _ = self.engine.handle_attempt_ended(
                    now,
                    &l.callback_id,
                    AttemptResult::Interrupted,
                );
            }
        }
    }

    fn publish(&self, now: DateTime<Utc>) {
        let g = self.engine.gauges(now);
        *self
            .shared
            .gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = g;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::engine::RegisterRequest;
    use crate::callback::{CallbackSettings, Status};
    use crate::store::sqlite::SqliteStore;
    use crate::store::Snapshot;
    use std::sync::atomic::AtomicI64;

    /// A clock the test moves.
    fn clock(start: DateTime<Utc>) -> (Clock, Arc<AtomicI64>) {
        let ms = Arc::new(AtomicI64::new(start.timestamp_millis()));
        let m = ms.clone();
        let c: Clock = Arc::new(move || {
            DateTime::from_timestamp_millis(m.load(Ordering::SeqCst)).unwrap_or_default()
        });
        (c, ms)
    }

    fn targets() -> Vec<TargetConfig> {
        vec![TargetConfig {
            id: "billing".into(),
            name: "Billing".into(),
            settings: CallbackSettings {
                organization: Some("acme".into()),
                pacing: 1,
                ..CallbackSettings::default()
            },
        }]
    }

    fn req(n: u32) -> RegisterRequest {
        RegisterRequest {
            call_target: "billing".into(),
            number: format!("+1555000{n:04}"),
            ..RegisterRequest::default()
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-14T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The real SQLite store with a switch that makes writes fail (a full disk).
    struct Faulty {
        inner: SqliteStore,
        broken: Arc<AtomicBool>,
    }

    impl Store for Faulty {
        fn apply(&mut self, w: &[Write]) -> Result<(), StoreError> {
            if self.broken.load(Ordering::SeqCst) {
                return Err(StoreError::Backend {
                    op: "writing",
                    message: "disk full".into(),
                });
            }
            self.inner.apply(w)
        }
        fn load(&mut self) -> Result<Snapshot, StoreError> {
            self.inner.load()
        }
        fn get(&mut self, id: &str) -> Result<Option<Callback>, StoreError> {
            self.inner.get(id)
        }
        fn ping(&mut self) -> Result<(), StoreError> {
            if self.broken.load(Ordering::SeqCst) {
                return Err(StoreError::FileGone("test".into()));
            }
            self.inner.ping()
        }
        fn prune_refusals(&mut self, b: DateTime<Utc>) -> Result<usize, StoreError> {
            self.inner.prune_refusals(b)
        }
        fn recheck_punctuality(
            &mut self,
            tolerance: &dyn Fn(&str) -> Option<u64>,
        ) -> Result<usize, StoreError> {
            self.inner.recheck_punctuality(tolerance)
        }
        fn records_page(
            &mut self,
            org: &str,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
            after: Option<&RecordCursor>,
            limit: usize,
        ) -> Result<RecordPage, StoreError> {
            self.inner.records_page(org, from, to, after, limit)
        }
    }

    #[tokio::test]
    async fn launches_reach_the_dialler_after_they_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (clock, _) = clock(t0());
        let svc = Service::start(targets(), Box::new(store), 1, clock).unwrap();
        let a = svc.register(req(1)).await.unwrap().unwrap().callback;
        let b = svc.register(req(2)).await.unwrap().unwrap().callback;
        let mut dialler = svc.attach_dialler().unwrap();
        let l = dialler.recv().await.unwrap();
        assert_eq!((l.callback_id.as_str(), l.attempt), (a.id.as_str(), 1));
        // Pacing 1: B waits until A's attempt ends.
        let v = svc.status("acme", &b.number).await.unwrap();
        assert_eq!((v[0].callback.status, v[0].position), (Status::Pending, 1));
        let found = svc.get("acme", &a.id).await.unwrap();
        assert!(matches!(found, Some(Found::Active(v)) if v.callback.status == Status::InProgress));
        svc.agent_connected(&a.id).await.unwrap().unwrap();
        svc.attempt_ended(&a.id, AttemptResult::Completed)
            .await
            .unwrap()
            .unwrap();
        let l = dialler.recv().await.unwrap();
        assert_eq!(l.callback_id, b.id);
        assert_eq!(
            svc.attempt_ended(&a.id, AttemptResult::Busy).await.unwrap(),
            Err(EngineError::UnknownCallback(a.id.clone()))
        );
        let m = svc.render_metrics();
        assert!(
            m.contains("holdless_callbacks_in_progress{call_target=\"billing\"} 1"),
            "{m}"
        );
        svc.stop().await;
        let mut store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&a.id).unwrap().unwrap().status, Status::Completed);
        assert_eq!(
            store.get(&b.id).unwrap().unwrap().status,
            Status::InProgress
        );
    }

    #[tokio::test]
    async fn a_failed_write_acknowledges_nothing_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let broken = Arc::new(AtomicBool::new(false));
        let store = Faulty {
            inner: SqliteStore::open(dir.path()).unwrap(),
            broken: broken.clone(),
        };
        let (clock, ms) = clock(t0());
        let svc = Service::start(targets(), Box::new(store), 1, clock).unwrap();
        let a = svc.register(req(1)).await.unwrap().unwrap().callback;
        broken.store(true, Ordering::SeqCst);
        assert_eq!(
            svc.register(req(2)).await.unwrap_err(),
            ServiceError::Unavailable
        );
        assert!(!svc.store_up());
        let (_, views) = svc.views(vec!["billing".into()]).await.unwrap();
        assert_eq!(
            views[0].state,
            crate::callback::WidgetState::PlatformUnavailable
        );
        assert_eq!(svc.ping().await, Err(ServiceError::Unavailable));
        assert_eq!(
            svc.cancel("acme", &a.number, None).await,
            Err(ServiceError::Unavailable)
        );
        // The store comes back: the engine is rebuilt from it; the refused registration
        // never happened, the acknowledged one is there.
        broken.store(false, Ordering::SeqCst);
        ms.fetch_add(1000, Ordering::SeqCst);
        svc.ping().await.unwrap_or(());
        let mut ok = false;
        for _ in 0..50 {
            if svc.status("acme", &a.number).await.is_ok() {
                ok = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(ok, "service recovered");
        assert!(svc.store_up());
        assert_eq!(svc.status("acme", &a.number).await.unwrap().len(), 1);
        assert!(svc.status("acme", "+15550000002").await.unwrap().is_empty());
        assert!(svc.register(req(2)).await.unwrap().is_ok());
        svc.stop().await;
    }

    #[tokio::test]
    async fn a_gone_dialler_requeues_the_callback() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (clock, _) = clock(t0());
        let svc = Service::start(targets(), Box::new(store), 1, clock).unwrap();
        drop(svc.attach_dialler().unwrap());
        let a = svc.register(req(1)).await.unwrap().unwrap().callback;
        // The launch could not be handed over: the attempt ends as interrupted, the
        // callback back in the queue without an attempt counted against it.
        let mut v = vec![];
        for _ in 0..50 {
            v = svc.status("acme", &a.number).await.unwrap();
            if v[0].callback.last_result.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(v[0].callback.status, Status::Pending);
        assert_eq!(v[0].callback.last_result, Some(AttemptResult::Interrupted));
        assert_eq!(v[0].callback.failed.error, 0);
        svc.stop().await;
    }

    #[tokio::test]
    async fn call_records_are_committed_then_read_by_page() {
        use crate::callback::record::{CallRecord, Outcome};
        let dir = tempfile::tempdir().unwrap();
        let broken = Arc::new(AtomicBool::new(false));
        let store = Faulty {
            inner: SqliteStore::open(dir.path()).unwrap(),
            broken: broken.clone(),
        };
        let (clock, _) = clock(t0());
        let svc = Service::start(targets(), Box::new(store), 1, clock).unwrap();
        let entry = |id: &str, secs: i64| RecordEntry {
            organization: "acme".into(),
            record: CallRecord::blank(
                id.into(),
                t0(),
                t0() + Duration::seconds(secs),
                Outcome::Held,
            ),
        };
        for (id, secs) in [("b", 1), ("a", 1), ("c", 2)] {
            svc.record(entry(id, secs)).await.unwrap();
        }
        let (from, to) = (t0(), t0() + Duration::hours(1));
        let p = svc.records_page("acme", from, to, None, 2).await.unwrap();
        assert_eq!(p.records.len(), 2);
        assert!(p.records[0].contains("\"id\":\"a\""), "{}", p.records[0]);
        let next = p.next.clone().unwrap();
        assert_eq!(
            (next.id.as_str(), next.ended_at),
            ("b", t0() + Duration::seconds(1))
        );
        let p = svc
            .records_page("acme", from, to, Some(next), 2)
            .await
            .unwrap();
        assert_eq!((p.records.len(), p.next), (1, None));
        // A record that cannot be made durable is not acknowledged.
        broken.store(true, Ordering::SeqCst);
        assert_eq!(
            svc.record(entry("d", 3)).await,
            Err(ServiceError::Unavailable)
        );
        svc.stop().await;
    }
}
