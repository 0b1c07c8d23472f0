//! A callback as one row of the `callbacks` table, the same for every backend: plain
//! values (Unix milliseconds, JSON text, enum names) in [`COLUMNS`] order. Encoding and
//! decoding are written once here; each backend only moves these values in and out.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::callback::model::{
    AttemptCounts, AttemptResult, Callback, Kind, Punctuality, Source, Status,
};

/// The `callbacks` columns, in the order of [`CallbackRow`]'s fields.
pub const COLUMNS: &str =
    "id, seq, organization, call_target, widget, number, kind, status, source, \
    channel, user_data, sip_headers, requested_at, estimated_for, ecbt_secs, due_at, appointment, \
    attempts, failed_busy, failed_no_answer, failed_voicemail, failed_error, last_result, \
    launched_at, agent_connected_at, processed_at, punctuality_secs, was_punctual, \
    estimate_accuracy, finished_at, inbound, retry_created_at, launched_by";

/// Unix milliseconds of an instant.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant of Unix milliseconds (the epoch for a value out of range).
pub fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// A stored integer from an unsigned one (saturating).
pub fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The `callbacks` columns' values, in [`COLUMNS`] order.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // each field is the column of the same name
pub struct CallbackRow {
    pub id: String,
    pub seq: i64,
    pub organization: String,
    pub call_target: String,
    pub widget: Option<String>,
    pub number: String,
    pub kind: String,
    pub status: String,
    pub source: String,
    pub channel: Option<String>,
    pub user_data: String,
    pub sip_headers: String,
    pub requested_at: i64,
    pub estimated_for: i64,
    pub ecbt_secs: i64,
    pub due_at: i64,
    pub appointment: Option<i64>,
    pub attempts: i64,
    pub failed_busy: i64,
    pub failed_no_answer: i64,
    pub failed_voicemail: i64,
    pub failed_error: i64,
    pub last_result: Option<String>,
    pub launched_at: Option<i64>,
    pub agent_connected_at: Option<i64>,
    pub processed_at: Option<i64>,
    pub punctuality_secs: Option<i64>,
    pub was_punctual: Option<bool>,
    pub estimate_accuracy: Option<f64>,
    pub finished_at: Option<i64>,
    pub inbound: Option<String>,
    pub retry_created_at: Option<i64>,
    pub launched_by: Option<i64>,
}

impl CallbackRow {
    /// The row of a callback.
    pub fn encode(cb: &Callback) -> Result<CallbackRow, serde_json::Error> {
        let p = cb.punctuality.as_ref();
        Ok(CallbackRow {
            id: cb.id.clone(),
            seq: i64_of(cb.seq),
            organization: cb.organization.clone(),
            call_target: cb.call_target.clone(),
            widget: cb.widget.clone(),
            number: cb.number.clone(),
            kind: cb.kind.as_str().to_owned(),
            status: cb.status.as_str().to_owned(),
            source: cb.source.as_str().to_owned(),
            channel: cb.channel.clone(),
            user_data: serde_json::to_string(&cb.user_data)?,
            sip_headers: serde_json::to_string(&cb.sip_headers)?,
            requested_at: ms(cb.requested_at),
            estimated_for: ms(cb.estimated_for),
            ecbt_secs: i64_of(cb.ecbt_secs),
            due_at: ms(cb.due_at),
            appointment: cb.appointment.map(ms),
            attempts: cb.attempts.into(),
            failed_busy: cb.failed.busy.into(),
            failed_no_answer: cb.failed.no_answer.into(),
            failed_voicemail: cb.failed.voicemail.into(),
            failed_error: cb.failed.error.into(),
            last_result: cb.last_result.map(|r| r.as_str().to_owned()),
            launched_at: cb.launched_at.map(ms),
            agent_connected_at: cb.agent_connected_at.map(ms),
            processed_at: p.map(|p| ms(p.processed_at)),
            punctuality_secs: p.map(|p| p.punctuality_secs),
            was_punctual: p.map(|p| p.was_punctual),
            estimate_accuracy: p.map(|p| p.estimate_percent_accuracy),
            finished_at: cb.finished_at.map(ms),
            inbound: cb.inbound.as_ref().map(serde_json::to_string).transpose()?,
            retry_created_at: cb.retry_created_at.map(ms),
            launched_by: cb.launched_by,
        })
    }

    /// The callback this row holds; [`StoreError::Corrupt`] names the first bad column.
    pub fn decode(self) -> Result<Callback, StoreError> {
        let id = self.id;
        let bad = |what: String| StoreError::Corrupt {
            id: id.clone(),
            what,
        };
        let kind = Kind::parse(&self.kind).ok_or_else(|| bad(format!("kind {:?}", self.kind)))?;
        let status =
            Status::parse(&self.status).ok_or_else(|| bad(format!("status {:?}", self.status)))?;
        let source =
            Source::parse(&self.source).ok_or_else(|| bad(format!("source {:?}", self.source)))?;
        let last_result = match self.last_result.as_deref() {
            None => None,
            Some(r) => {
                Some(AttemptResult::parse(r).ok_or_else(|| bad(format!("last_result {r:?}")))?)
            }
        };
        let user_data =
            serde_json::from_str(&self.user_data).map_err(|e| bad(format!("user_data: {e}")))?;
        let sip_headers = serde_json::from_str(&self.sip_headers)
            .map_err(|e| bad(format!("sip_headers: {e}")))?;
        let inbound = match self.inbound.as_deref() {
            None => None,
            Some(j) => Some(serde_json::from_str(j).map_err(|e| bad(format!("inbound: {e}")))?),
        };
        let count = |v: i64| u32::try_from(v).unwrap_or(0);
        Ok(Callback {
            seq: u64::try_from(self.seq).unwrap_or(0),
            organization: self.organization,
            call_target: self.call_target,
            widget: self.widget,
            number: self.number,
            kind,
            status,
            source,
            channel: self.channel,
            user_data,
            sip_headers,
            requested_at: from_ms(self.requested_at),
            estimated_for: from_ms(self.estimated_for),
            ecbt_secs: u64::try_from(self.ecbt_secs).unwrap_or(0),
            due_at: from_ms(self.due_at),
            appointment: self.appointment.map(from_ms),
            attempts: count(self.attempts),
            failed: AttemptCounts {
                busy: count(self.failed_busy),
                no_answer: count(self.failed_no_answer),
                voicemail: count(self.failed_voicemail),
                error: count(self.failed_error),
            },
            last_result,
            launched_at: self.launched_at.map(from_ms),
            agent_connected_at: self.agent_connected_at.map(from_ms),
            punctuality: self.processed_at.map(|t| Punctuality {
                processed_at: from_ms(t),
                punctuality_secs: self.punctuality_secs.unwrap_or(0),
                was_punctual: self.was_punctual.unwrap_or(false),
                estimate_percent_accuracy: self.estimate_accuracy.unwrap_or(0.0),
            }),
            finished_at: self.finished_at.map(from_ms),
            inbound,
            retry_created_at: self.retry_created_at.map(from_ms),
            launched_by: self.launched_by,
            id,
        })
    }
}
