//! Releasing callbacks for dialling, the dialler's events, retries, and restoring the
//! engine from the store after a restart.

use chrono::{DateTime, Utc};

use super::{class, lane, secs, Engine, EngineError, Lane, TargetState, Write};
use crate::callback::attempt::{self, AttemptReport, Party};
use crate::callback::ecbt::{launch_window_opens, Estimator};
use crate::callback::model::{
    AttemptResult, Callback, CallbackId, FirstParty, Punctuality, Status,
};
use crate::callback::record::{Attempt, CallRecord, InboundCall, RecordEntry};

/// Floor of the wait used for `estimatePercentAccuracy`, seconds: a callback promised
/// "now" and made 5 s late is not 0 % accurate.
pub const ACCURACY_FLOOR_SECS: f64 = 60.0;

/// Decimal places kept in `estimatePercentAccuracy` (Mindful's example: `0.85111`).
const ACCURACY_DECIMALS: i32 = 5;

/// With `ecbt.hold_early`: the queued callbacks looked at, from the head, for one whose
/// window is open (a retry, or a later callback quoted sooner), so a launch decision stays
/// bounded however long the queue.
const HOLD_SCAN: usize = 32;

/// A callback released for dialling: everything the dialler needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Launch {
    /// Callback id.
    pub callback_id: CallbackId,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Organization.
    pub organization: String,
    /// Call target.
    pub call_target: String,
    /// The customer's number, E.164.
    pub number: String,
    /// Which leg to dial first.
    pub first_party: FirstParty,
    /// The contact-center URI for the agent leg.
    pub contact_center: Option<String>,
    /// Caller ID to present.
    pub caller_id: Option<String>,
    /// `user_data` given at registration.
    pub user_data: serde_json::Map<String, serde_json::Value>,
    /// SIP headers captured at registration (to send back on the agent leg).
    pub sip_headers: Vec<(String, String)>,
    /// The inbound call that registered the callback (SIP), for the first attempt's record.
    pub inbound: Option<InboundCall>,
    /// The node instance that dials it (several nodes on one database); `None` on a node
    /// alone on its store.
    pub node: Option<i64>,
}

/// One dialling attempt, as recorded when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// Callback id.
    pub callback_id: CallbackId,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Call target.
    pub call_target: String,
    /// When it was released for dialling.
    pub launched_at: DateTime<Utc>,
    /// When the agent leg connected, if it did.
    pub agent_connected_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// How.
    pub result: AttemptResult,
}

/// What [`Engine::restore`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Active callbacks loaded.
    pub loaded: usize,
    /// Callbacks that were in progress when holdless stopped (their attempt counts as an
    /// error and the retry policy applies).
    pub interrupted: usize,
    /// Callbacks of call targets no longer configured (left untouched in the store).
    pub orphaned: usize,
    /// Callbacks still being dialled by a node instance that lives (another node, a
    /// draining one finishing its calls, or this one, leading again): left in progress,
    /// counted in pacing, until it reports.
    pub dialled_elsewhere: usize,
}

/// How the launch at `now` compares with the estimate: `punctuality` (seconds late,
/// negative when early), `wasPunctual` (within the tolerance either way) and
/// `estimatePercentAccuracy`, a fraction: `1 − |error| / max(estimated wait, 60 s)`,
/// clamped to 0–1, where the estimated wait is `estimatedFor − registration`.
pub(crate) fn punctuality(cb: &Callback, now: DateTime<Utc>, tolerance_secs: u64) -> Punctuality {
    let late = (now - cb.estimated_for).num_seconds();
    let estimated = (cb.estimated_for - cb.requested_at).num_milliseconds() as f64 / 1000.0;
    let error = (now - cb.estimated_for).num_milliseconds().abs() as f64 / 1000.0;
    let accuracy = (1.0 - error / estimated.max(ACCURACY_FLOOR_SECS)).clamp(0.0, 1.0);
    let scale = 10f64.powi(ACCURACY_DECIMALS);
    Punctuality {
        processed_at: now,
        punctuality_secs: late,
        was_punctual: late.unsigned_abs() <= tolerance_secs,
        estimate_percent_accuracy: (accuracy * scale).round() / scale,
    }
}

impl Engine {
    /// The next callback to dial, if one is due, its call target open (or it is a
    /// scheduled callback at its slot) and pacing allows. Call until `None`.
    pub fn poll_launch(&mut self, now: DateTime<Utc>) -> Option<Launch> {
        if !self.dialling {
            return None;
        }
        let ids = self.target_ids.clone();
        for tid in ids.iter() {
            self.promote(now, tid);
            if let Some(id) = self.next_ready(now, tid) {
                return self.launch(now, &id);
            }
        }
        None
    }

    /// Moves due callbacks of a target from `delayed` to `ready`.
    fn promote(&mut self, now: DateTime<Utc>, tid: &str) {
        let Some(t) = self.targets.get_mut(tid) else {
            return;
        };
        while let Some(entry) = t.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), id) = entry.remove_entry();
            let l = self.callbacks.get(&id).map(lane).unwrap_or(Lane::Fifo);
            t.ready.insert((class(l), seq), id);
        }
    }

    fn next_ready(&self, now: DateTime<Utc>, tid: &str) -> Option<CallbackId> {
        let t = self.targets.get(tid)?;
        let s = &t.cfg.settings;
        if t.in_progress.len() >= s.pacing as usize || t.next_launch.is_some_and(|at| at > now) {
            return None;
        }
        for (&(class, _), id) in t.ready.iter().take(HOLD_SCAN) {
            // Scheduled first attempts go at their slot; the rest only while open.
            if class != 0 && !s.hours.is_open(now) {
                return None;
            }
            if self.held_until(t, id).is_none_or(|at| at <= now) {
                return Some(id.clone());
            }
        }
        None
    }

    /// With `ecbt.hold_early`: when an ASAP callback's first attempt may launch at the
    /// earliest (its quote's window opens). `None`: whenever its turn comes, which is also
    /// the case while more than `pacing` callbacks are waiting: holding a backlog would
    /// idle slots it needs, lengthen the queue and the next quotes, and feed on itself.
    fn held_until(&self, t: &TargetState, id: &str) -> Option<DateTime<Utc>> {
        let s = &t.cfg.settings;
        if !s.ecbt.hold_early || t.ready.len() > s.pacing as usize {
            return None;
        }
        let cb = self.callbacks.get(id)?;
        if cb.attempts > 0 || cb.punctuality.is_some() || lane(cb) != Lane::Fifo {
            return None;
        }
        let lead = if s.first_party == FirstParty::Agent {
            t.estimator.connect_secs
        } else {
            0.0
        };
        Some(launch_window_opens(
            cb.requested_at,
            cb.estimated_for,
            s.punctual_within_secs,
            lead,
            &s.ecbt,
        ))
    }

    /// The earliest moment a held callback of a target with a free slot may launch.
    fn next_release_of_held(&self, now: DateTime<Utc>, t: &TargetState) -> Option<DateTime<Utc>> {
        if !t.cfg.settings.ecbt.hold_early {
            return None;
        }
        t.ready
            .values()
            .take(HOLD_SCAN)
            .filter_map(|id| self.held_until(t, id))
            .filter(|at| *at > now)
            .min()
    }

    fn launch(&mut self, now: DateTime<Utc>, id: &str) -> Option<Launch> {
        let mut cb = self.callbacks.get(id)?.clone();
        let dialler = self.pick_dialler();
        self.unqueue(&cb);
        let t = self.targets.get_mut(&cb.call_target)?;
        let s = &t.cfg.settings;
        cb.status = Status::InProgress;
        cb.attempts += 1;
        cb.launched_at = Some(now);
        cb.launched_by = dialler;
        cb.agent_connected_at = None;
        if cb.punctuality.is_none() && s.first_party == FirstParty::Customer {
            cb.punctuality = Some(punctuality(&cb, now, s.punctual_within_secs));
        }
        t.in_progress.insert(cb.id.clone());
        if s.launches_per_sec > 0 {
            let gap = 1_000_000 / i64::from(s.launches_per_sec);
            t.next_launch = Some(now + chrono::Duration::microseconds(gap));
        }
        let launch = Launch {
            callback_id: cb.id.clone(),
            attempt: cb.attempts,
            organization: cb.organization.clone(),
            call_target: cb.call_target.clone(),
            number: cb.number.clone(),
            first_party: s.first_party,
            contact_center: s.contact_center.clone(),
            caller_id: s.caller_id.clone(),
            user_data: cb.user_data.clone(),
            sip_headers: cb.sip_headers.clone(),
            inbound: cb.inbound.clone(),
            node: cb.launched_by,
        };
        self.write(Write::Callback(Box::new(cb.clone())));
        self.callbacks.insert(cb.id.clone(), cb);
        Some(launch)
    }

    /// The node instance to dial the next launch: of this one and the other nodes that
    /// dial, the one with the fewest callbacks in progress (the first such, in order).
    fn pick_dialler(&self) -> Option<i64> {
        if self.diallers.is_empty() {
            return self.instance;
        }
        let mut load: Vec<(Option<i64>, usize)> = std::iter::once(self.instance)
            .chain(self.diallers.iter().copied().map(Some))
            .map(|i| (i, 0))
            .collect();
        for id in self.targets.values().flat_map(|t| t.in_progress.iter()) {
            let by = self.callbacks.get(id).and_then(|cb| cb.launched_by);
            if let Some(slot) = load.iter_mut().find(|(i, _)| *i == by) {
                slot.1 += 1;
            }
        }
        load.iter().min_by_key(|(_, n)| *n).and_then(|(i, _)| *i)
    }

    /// When the engine next has something to do on its own (a callback falls due, a
    /// closed call target with waiting callbacks opens). Dialler events and registrations
    /// may of course come sooner.
    pub fn poll_timeout(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.dialling {
            return None;
        }
        let mut next: Option<DateTime<Utc>> = None;
        let mut earliest = |t: DateTime<Utc>| {
            next = Some(next.map_or(t, |n| n.min(t)));
        };
        for t in self.targets.values() {
            let s = &t.cfg.settings;
            if let Some(((due, _), _)) = t.delayed.first_key_value() {
                earliest((*due).max(now));
            }
            let free = t.in_progress.len() < s.pacing as usize;
            if let Some(at) = t.next_launch.filter(|at| *at > now && free) {
                if !t.ready.is_empty() {
                    // Launches paced per second: the next one is due then.
                    earliest(at);
                }
            }
            if free && t.next_launch.is_none_or(|at| at <= now) {
                if let Some(at) = self.next_release_of_held(now, t) {
                    earliest(at);
                }
            }
            let waiting_fifo = t.ready.range((1, 0)..).next().is_some();
            if waiting_fifo && t.in_progress.len() < s.pacing as usize && !s.hours.is_open(now) {
                if let Some(open) = s.hours.next_open(now) {
                    earliest(open);
                }
            }
        }
        next
    }

    fn in_progress_mut(&mut self, id: &str) -> Result<&mut Callback, EngineError> {
        let cb = self
            .callbacks
            .get_mut(id)
            .ok_or_else(|| EngineError::UnknownCallback(id.to_owned()))?;
        if cb.status != Status::InProgress {
            return Err(EngineError::NotInProgress(id.to_owned()));
        }
        Ok(cb)
    }

    /// The dialler reports that a callback's agent leg answered.
    pub fn handle_agent_connected(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
    ) -> Result<(), EngineError> {
        let cb = self.in_progress_mut(id)?;
        cb.agent_connected_at = Some(now);
        let launched = cb.launched_at.unwrap_or(now);
        let tid = cb.call_target.clone();
        let Some(t) = self.targets.get_mut(&tid) else {
            return Ok(());
        };
        let s = &t.cfg.settings;
        let secs = (now - launched).num_milliseconds() as f64 / 1000.0;
        t.estimator.on_agent_connected(secs, &s.ecbt);
        let state = t.estimator.clone();
        let (first, tolerance) = (s.first_party, s.punctual_within_secs);
        let Some(cb) = self.callbacks.get_mut(id) else {
            return Ok(());
        };
        if cb.punctuality.is_none() && first == FirstParty::Agent {
            // Agent first: the customer is called now.
            cb.punctuality = Some(punctuality(cb, now, tolerance));
        }
        let cb = cb.clone();
        self.write(Write::Callback(Box::new(cb)));
        self.write(Write::Estimator {
            call_target: tid,
            state,
        });
        Ok(())
    }

    /// The dialler reports how an attempt ended: completed, or failed and then retried per
    /// the call target's policy or given up.
    pub fn handle_attempt_ended(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        result: AttemptResult,
    ) -> Result<(), EngineError> {
        self.handle_attempt_report(now, id, result, None)
    }

    /// The same with what the dialler saw of the attempt (legs, delays, who hung up), for
    /// its call record. A rescheduled attempt (`report.rescheduled`) is queued again after
    /// the delay it carries without counting against the retry caps.
    pub fn handle_attempt_report(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        result: AttemptResult,
        report: Option<AttemptReport>,
    ) -> Result<(), EngineError> {
        let cb = self.in_progress_mut(id)?.clone();
        let Some(t) = self.targets.get_mut(&cb.call_target) else {
            return Err(EngineError::UnknownCallback(id.to_owned()));
        };
        let s = &t.cfg.settings;
        let saturated = t.in_progress.len() >= s.pacing as usize;
        t.in_progress.remove(id);
        let launched = cb.launched_at.unwrap_or(now);
        let held = (now - launched).num_milliseconds() as f64 / 1000.0;
        t.estimator.on_released(now, held, saturated, &s.ecbt);
        let state = t.estimator.clone();
        self.write(Write::Estimator {
            call_target: cb.call_target.clone(),
            state,
        });
        self.end_attempt(now, cb, result, report);
        Ok(())
    }

    /// Records the attempt (its attempt row and its call record) and completes, retries
    /// or fails the callback.
    fn end_attempt(
        &mut self,
        now: DateTime<Utc>,
        mut cb: Callback,
        result: AttemptResult,
        report: Option<AttemptReport>,
    ) {
        cb.launched_by = None;
        self.write(Write::Attempt(AttemptRecord {
            callback_id: cb.id.clone(),
            attempt: cb.attempts,
            call_target: cb.call_target.clone(),
            launched_at: cb.launched_at.unwrap_or(now),
            agent_connected_at: cb.agent_connected_at,
            ended_at: now,
            result,
        }));
        cb.last_result = Some(result);
        let settings = self.targets.get(&cb.call_target).map(|t| &t.cfg.settings);
        let retry = settings.and_then(|s| s.retry.for_result(result));
        let cap = settings.map_or(u32::MAX, |s| s.retry.max_attempts);
        let again = match (retry, cb.failed.slot(result)) {
            (Some(rule), Some(count)) => {
                *count += 1;
                (*count < rule.attempts).then_some(rule.delay_secs)
            }
            _ => None,
        };
        let f = cb.failed;
        let failed = f.busy + f.no_answer + f.voicemail + f.error;
        let again = again.filter(|_| failed < cap);
        let again = again
            .or(report.as_ref().and_then(|r| r.rescheduled))
            .or((result == AttemptResult::Interrupted).then_some(0));
        self.write_attempt_record(now, &cb, result, report.as_ref(), again.is_some());
        match again {
            Some(delay) => {
                cb.status = Status::Pending;
                cb.due_at = now + secs(delay);
                cb.retry_created_at = Some(now);
                self.queue(now, &cb);
                self.write(Write::Callback(Box::new(cb.clone())));
                self.callbacks.insert(cb.id.clone(), cb);
            }
            None => {
                cb.status = if result == AttemptResult::Completed {
                    Status::Completed
                } else {
                    Status::Failed
                };
                cb.finished_at = Some(now);
                self.callbacks.remove(&cb.id);
                if let Some(t) = self.targets.get_mut(&cb.call_target) {
                    t.by_number.remove(&cb.number);
                    t.fifo_rank.forget(cb.seq);
                }
                self.write(Write::Callback(Box::new(cb)));
            }
        }
    }

    /// The attempt's call record: the callback's fields ([`CallRecord::for_attempt`]), then
    /// what the dialler saw. Ids: the callback's id for the first attempt, `<id>-<n>` for
    /// attempt `n` after it, so `originalId` is the callback's id.
    fn write_attempt_record(
        &mut self,
        now: DateTime<Utc>,
        cb: &Callback,
        result: AttemptResult,
        report: Option<&AttemptReport>,
        has_retry: bool,
    ) {
        let target = self.targets.get(&cb.call_target);
        let name = target.map(|t| t.cfg.name.clone());
        let first_party = target.map(|t| t.cfg.settings.first_party);
        let retry_attempt = cb.attempts.saturating_sub(1);
        let attempt = Attempt {
            id: if retry_attempt == 0 {
                cb.id.clone()
            } else {
                format!("{}-{}", cb.id, cb.attempts)
            },
            original_id: cb.id.clone(),
            retry_attempt,
            created_at: cb.retry_created_at.unwrap_or(cb.requested_at),
        };
        let fallback;
        let report = match report {
            Some(r) => r,
            None => {
                // No word from the dialler (a restart mid-attempt, the dialler gone).
                let mut r = AttemptReport::new(
                    first_party.unwrap_or(FirstParty::Customer),
                    cb.launched_at.unwrap_or(now),
                );
                r.ended_at = now;
                r.hung_up_first = Some(Party::System);
                fallback = r;
                &fallback
            }
        };
        let outcome = report.outcome(result);
        let mut record = CallRecord::for_attempt(cb, name.as_deref(), attempt, now, outcome);
        attempt::apply(&mut record, report);
        record.has_retry = Some(has_retry);
        self.write(Write::Record(Box::new(RecordEntry {
            organization: cb.organization.clone(),
            record,
        })));
    }

    /// Loads what the store holds: the active callbacks (any order), the learned
    /// estimators, and the highest sequence number ever used. A callback that was in
    /// progress when holdless stopped lost its call: its attempt ends as `error` now.
    pub fn restore(
        &mut self,
        now: DateTime<Utc>,
        callbacks: Vec<Callback>,
        estimators: Vec<(String, Estimator)>,
        max_seq: u64,
    ) -> RestoreReport {
        self.restore_alive(now, callbacks, estimators, max_seq, &|_| false)
    }

    /// [`Engine::restore`] on a node taking the lead: a callback in progress on a node
    /// instance that still lives (`alive`, or this very instance) keeps its call; that
    /// node reports its end (or dies, see [`Engine::handle_instances_gone`]).
    pub fn restore_alive(
        &mut self,
        now: DateTime<Utc>,
        mut callbacks: Vec<Callback>,
        estimators: Vec<(String, Estimator)>,
        max_seq: u64,
        alive: &dyn Fn(i64) -> bool,
    ) -> RestoreReport {
        let mut report = RestoreReport::default();
        for (tid, e) in estimators {
            if let Some(t) = self.targets.get_mut(&tid) {
                t.estimator = e;
            }
        }
        self.next_seq = self.next_seq.max(max_seq + 1);
        callbacks.sort_by_key(|c| c.seq);
        for cb in callbacks {
            if !cb.status.is_active() {
                continue;
            }
            if !self.targets.contains_key(&cb.call_target) {
                report.orphaned += 1;
                continue;
            }
            report.loaded += 1;
            self.next_seq = self.next_seq.max(cb.seq + 1);
            let still_dialled = cb
                .launched_by
                .is_some_and(|by| Some(by) == self.instance || alive(by));
            if cb.status == Status::InProgress && still_dialled {
                report.dialled_elsewhere += 1;
                if let Some(t) = self.targets.get_mut(&cb.call_target) {
                    t.by_number.insert(cb.number.clone(), cb.id.clone());
                    t.in_progress.insert(cb.id.clone());
                }
                self.callbacks.insert(cb.id.clone(), cb);
                continue;
            }
            if cb.status == Status::InProgress {
                report.interrupted += 1;
                if let Some(t) = self.targets.get_mut(&cb.call_target) {
                    t.by_number.insert(cb.number.clone(), cb.id.clone());
                }
                self.end_attempt(now, cb, AttemptResult::Error, None);
                continue;
            }
            self.queue(now, &cb);
            self.callbacks.insert(cb.id.clone(), cb);
        }
        report
    }

    /// Ends, as `error` (the call died with its node), the attempts of callbacks in
    /// progress on another node instance that no longer lives; how many.
    pub fn handle_instances_gone(
        &mut self,
        now: DateTime<Utc>,
        alive: &dyn Fn(i64) -> bool,
    ) -> usize {
        let gone: Vec<CallbackId> = self
            .callbacks
            .values()
            .filter(|cb| cb.status == Status::InProgress)
            .filter(|cb| {
                cb.launched_by
                    .is_some_and(|by| Some(by) != self.instance && !alive(by))
            })
            .map(|cb| cb.id.clone())
            .collect();
        for id in &gone {
            let _ = self.handle_attempt_report(now, id, AttemptResult::Error, None);
        }
        gone.len()
    }

    /// Callbacks of a target that are due and wait only for a pacing slot.
    #[cfg(test)]
    pub(crate) fn ready_len(&self, tid: &str) -> usize {
        self.targets.get(tid).map_or(0, |t| t.ready.len())
    }
}
