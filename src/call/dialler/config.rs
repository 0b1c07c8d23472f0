//! `[call_targets.dialler]`: how a call target's callbacks are dialled (ring timeouts, the
//! customer's acknowledgement, voicemail, whisper, reschedule, the metadata header sent
//! back on the agent leg, the trunks), validated into [`DiallerSettings`] with errors
//! naming their key.

use std::time::Duration;

use serde::Deserialize;

use crate::key_error::KeyError;

/// Longest ring timeout accepted on either leg, seconds (an agent queue may ring long; past
/// ten minutes a leg is stuck, not queued).
pub const MAX_RING_SECS: u64 = 600;

/// How the callback's metadata travels back on the agent leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnEncoding {
    /// The value as the contact center sent it (Twilio flows read it as is).
    Raw,
    /// Hex of the decoded value with `;encoding=hex` (RFC 7433).
    Hex,
}

/// A call target's dialler settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiallerSettings {
    /// The customer leg rings this long before it counts as not answered.
    pub customer_ring: Duration,
    /// The agent leg rings this long (the priority-queue timeout).
    pub agent_ring: Duration,
    /// After the prompt ends, the customer (or, with a whisper, the agent) has this long
    /// to press 1.
    pub press_timeout: Duration,
    /// Play the voicemail prompt to a customer leg that answered and never pressed 1.
    pub leave_voicemail: bool,
    /// Agent first: play the whisper to the agent and wait for 1 before calling the
    /// customer.
    pub whisper: bool,
    /// The customer pressed 2: called again after this many seconds.
    pub reschedule_delay_secs: u64,
    /// Header carrying the metadata back on the agent leg.
    pub return_header: String,
    /// Its encoding.
    pub return_encoding: ReturnEncoding,
    /// Customer legs go through this `[[trunks]]` entry (by id). `None`: the `[calls]
    /// outbound_trunk`.
    pub customer_trunk: Option<String>,
    /// Agent legs go through this `[[trunks]]` entry. `None`: straight to
    /// `contact_center`.
    pub agent_trunk: Option<String>,
}

impl Default for DiallerSettings {
    fn default() -> Self {
        DiallerSettings {
            customer_ring: Duration::from_secs(30),
            agent_ring: Duration::from_secs(120),
            press_timeout: Duration::from_secs(8),
            leave_voicemail: false,
            whisper: true,
            reschedule_delay_secs: 900,
            return_header: "X-User-To-User".into(),
            return_encoding: ReturnEncoding::Raw,
            customer_trunk: None,
            agent_trunk: None,
        }
    }
}

/// `[call_targets.dialler]` as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawDialler {
    customer_ring_timeout_secs: Option<u64>,
    agent_ring_timeout_secs: Option<u64>,
    press_timeout_secs: Option<u64>,
    leave_voicemail: Option<bool>,
    whisper: Option<bool>,
    reschedule_delay_secs: Option<u64>,
    return_header: Option<String>,
    return_encoding: Option<String>,
    customer_trunk: Option<String>,
    agent_trunk: Option<String>,
}

/// Validates the dialler table of the call target `key` (`call_targets[2]`).
pub(crate) fn validate(
    errors: &mut Vec<KeyError>,
    key: &str,
    raw: Option<&RawDialler>,
) -> DiallerSettings {
    let mut s = DiallerSettings::default();
    let Some(r) = raw else { return s };
    let mut err = |k: &str, message: String| {
        errors.push(KeyError {
            key: format!("{key}.dialler.{k}"),
            message,
        })
    };
    let mut secs = |k: &str, v: Option<u64>, max: u64, into: &mut Duration| {
        if let Some(v) = v {
            if (1..=max).contains(&v) {
                *into = Duration::from_secs(v);
            } else {
                err(k, format!("must be 1-{max} seconds, not {v}"));
            }
        }
    };
    secs(
        "customer_ring_timeout_secs",
        r.customer_ring_timeout_secs,
        MAX_RING_SECS,
        &mut s.customer_ring,
    );
    secs(
        "agent_ring_timeout_secs",
        r.agent_ring_timeout_secs,
        MAX_RING_SECS,
        &mut s.agent_ring,
    );
    secs(
        "press_timeout_secs",
        r.press_timeout_secs,
        60,
        &mut s.press_timeout,
    );
    if let Some(v) = r.leave_voicemail {
        s.leave_voicemail = v;
    }
    if let Some(v) = r.whisper {
        s.whisper = v;
    }
    if let Some(v) = r.reschedule_delay_secs {
        s.reschedule_delay_secs = v;
    }
    if let Some(h) = &r.return_header {
        let token = !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
        if token {
            s.return_header = h.clone();
        } else {
            err("return_header", format!("{h:?} is not a SIP header name"));
        }
    }
    match r.return_encoding.as_deref() {
        None | Some("raw") => {}
        Some("hex") => s.return_encoding = ReturnEncoding::Hex,
        Some(v) => err(
            "return_encoding",
            format!("must be \"raw\" or \"hex\", not {v:?}"),
        ),
    }
    // Checked against [[trunks]] by the configuration as a whole.
    s.customer_trunk = r.customer_trunk.clone();
    s.agent_trunk = r.agent_trunk.clone();
    s
}
