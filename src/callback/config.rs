//! Configuration of the callback engine and the Scheduler API: organizations, the callback
//! settings of each call target, and widgets. Read as part of [`crate::config`] (the raw
//! call-target table lives here so its keys stay checked for typos), validated into typed
//! settings, every error with its key path.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use chrono_tz::Tz;
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ecbt::EcbtSettings;
use super::hours::{BusinessHours, Span};
use super::model::{AttemptResult, FirstParty};
use super::number::is_e164;
use super::number::{CountryRule, NumberRules, Rate};
use crate::key_error::KeyError;
use crate::sip::uui::{self, Uui};

/// Most widgets, organizations or call targets a configuration may declare (each costs a
/// little per API request and per engine poll).
pub const MAX_ENTITIES: usize = 1000;

/// Longest template or message accepted.
pub const MAX_TEMPLATE: usize = 1024;

/// Shortest API token accepted (a guessable token is no access control).
pub const MIN_TOKEN_LEN: usize = 8;

/// Default SIP headers captured as callback metadata.
pub const DEFAULT_METADATA_HEADERS: [&str; 2] = ["X-User-To-User", "User-to-User"];

/// Placeholders a widget message may use.
pub const PLACEHOLDERS: [&str; 6] = ["when", "wait", "minutes", "seconds", "time", "date"];

// ------------------------------------------------------------------ raw (serde) side

fn yes() -> bool {
    true
}
/// Most gap spreads (`ecbt.margin`) a quote may add: beyond it a quote is no estimate.
const MAX_MARGIN: f64 = 5.0;

fn d_max_ecbt() -> u64 {
    3600
}
fn d_max_requested() -> u32 {
    1000
}
fn d_pacing() -> u32 {
    5
}
fn d_punctual() -> u64 {
    120
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawHours {
    #[serde(default = "utc")]
    time_zone: String,
    #[serde(default)]
    daily: Option<Vec<String>>,
    #[serde(default)]
    mon: Option<Vec<String>>,
    #[serde(default)]
    tue: Option<Vec<String>>,
    #[serde(default)]
    wed: Option<Vec<String>>,
    #[serde(default)]
    thu: Option<Vec<String>>,
    #[serde(default)]
    fri: Option<Vec<String>>,
    #[serde(default)]
    sat: Option<Vec<String>>,
    #[serde(default)]
    sun: Option<Vec<String>>,
    #[serde(default)]
    holidays: Vec<String>,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(default)]
pub(crate) struct RawScheduled {
    enabled: bool,
    slot_minutes: u32,
    max_per_slot: u32,
    days_ahead: u32,
}

impl Default for RawScheduled {
    fn default() -> Self {
        RawScheduled {
            enabled: false,
            slot_minutes: 15,
            max_per_slot: 5,
            days_ahead: 2,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(default)]
pub(crate) struct RawNextDay {
    enabled: bool,
    max: u32,
    delay_secs: u64,
}

impl Default for RawNextDay {
    fn default() -> Self {
        RawNextDay {
            enabled: false,
            max: 100,
            delay_secs: 900,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy)]
struct RawRetry {
    attempts: u32,
    delay_secs: u64,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(default)]
pub(crate) struct RawRetryPolicy {
    busy: RawRetry,
    no_answer: RawRetry,
    voicemail: RawRetry,
    error: RawRetry,
    max_attempts: u32,
}

impl Default for RawRetryPolicy {
    fn default() -> Self {
        RawRetryPolicy {
            busy: RawRetry {
                attempts: 3,
                delay_secs: 120,
            },
            no_answer: RawRetry {
                attempts: 3,
                delay_secs: 300,
            },
            voicemail: RawRetry {
                attempts: 2,
                delay_secs: 600,
            },
            error: RawRetry {
                attempts: 2,
                delay_secs: 60,
            },
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// Default cap on a callback's attempts of every kind together (rescheduled and
/// interrupted ones aside): the per-outcome caps could otherwise add up to 7 calls.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

#[derive(Debug, Deserialize)]
struct RawCountry {
    country_code: String,
    #[serde(default)]
    lengths: Vec<u8>,
}

#[derive(Debug, Deserialize)]
struct RawRate {
    prefix: String,
    per_minute: f64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawNumberRules {
    allowed: Vec<RawCountry>,
    default_country_code: Option<String>,
    blocked_prefixes: Vec<String>,
    max_rate: Option<f64>,
    rates: Vec<RawRate>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub(crate) struct RawMetadata {
    headers: Vec<String>,
    max_length: usize,
}

impl Default for RawMetadata {
    fn default() -> Self {
        RawMetadata {
            headers: DEFAULT_METADATA_HEADERS.map(String::from).to_vec(),
            max_length: 256,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(default)]
pub(crate) struct RawEcbt {
    initial_handle_secs: f64,
    initial_connect_secs: f64,
    smoothing: f64,
    hold_early: bool,
    window_percent: f64,
    margin: f64,
    adaptive: bool,
}

impl Default for RawEcbt {
    fn default() -> Self {
        let d = EcbtSettings::default();
        RawEcbt {
            initial_handle_secs: d.initial_handle_secs,
            initial_connect_secs: d.initial_connect_secs,
            smoothing: d.smoothing,
            hold_early: d.hold_early,
            window_percent: d.window_percent,
            margin: d.margin,
            adaptive: d.adaptive,
        }
    }
}

/// One `[[organizations]]` table as written.
#[derive(Debug, Deserialize)]
pub(crate) struct RawOrganization {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    api_tokens: Vec<String>,
    #[serde(default)]
    api_allow: Vec<String>,
}

/// One `[[widgets]]` table as written.
#[derive(Debug, Deserialize)]
pub(crate) struct RawWidget {
    id: String,
    call_target: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "d_message")]
    message: String,
    #[serde(default = "d_requested")]
    requested_message: String,
    #[serde(default = "d_scheduled")]
    scheduled_message: String,
    #[serde(default)]
    messages: RawStateMessages,
}

fn d_message() -> String {
    "We can call you back {when}.".into()
}
fn d_requested() -> String {
    "Your callback is registered. We will call you {when}.".into()
}
fn d_scheduled() -> String {
    "Your callback is registered for {when}.".into()
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawStateMessages {
    offer_callback: Option<String>,
    offer_asap_callback: Option<String>,
    offer_scheduled_callback: Option<String>,
    display_ewt_only: Option<String>,
    platform_unavailable: Option<String>,
}

// ------------------------------------------------------------------ typed side

/// Scheduled (appointment) callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledSettings {
    /// Whether appointments are offered.
    pub enabled: bool,
    /// Slot length, seconds.
    pub slot_secs: u32,
    /// Most callbacks booked into one slot.
    pub max_per_slot: u32,
    /// Slots are offered on local dates today ..= today + this.
    pub days_ahead: u32,
}

/// End-of-day handling: next-business-day callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextDaySettings {
    /// Whether callbacks are offered for the next business day when closed (or when the
    /// ECBT runs past closing time).
    pub enabled: bool,
    /// Most next-day callbacks waiting at once.
    pub max: u32,
    /// Seconds after the opening before they are dialled.
    pub delay_secs: u64,
}

/// Retries after one kind of failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts allowed while attempts keep ending this way (including the first).
    pub attempts: u32,
    /// Wait before the next attempt, seconds.
    pub delay_secs: u64,
}

/// Retry policy per attempt result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Customer busy.
    pub busy: Retry,
    /// No answer.
    pub no_answer: Retry,
    /// Voicemail or no acknowledgement.
    pub voicemail: Retry,
    /// Any other error.
    pub error: Retry,
    /// Most failed attempts of a callback, all outcomes together, before it fails.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The rule for a failed result (`None` for `Completed`).
    pub fn for_result(&self, r: AttemptResult) -> Option<Retry> {
        match r {
            AttemptResult::Completed
            | AttemptResult::Rescheduled
            | AttemptResult::Abandoned
            | AttemptResult::Interrupted => None,
            AttemptResult::Busy => Some(self.busy),
            AttemptResult::NoAnswer => Some(self.no_answer),
            AttemptResult::Voicemail => Some(self.voicemail),
            AttemptResult::Error => Some(self.error),
        }
    }
}

/// Which SIP headers of the inbound call are kept as callback metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataSettings {
    /// Header names (matched case-insensitively).
    pub headers: Vec<String>,
    /// Longest value kept, bytes; longer values are cut and flagged (see [`uui::decode`]).
    pub max_length: usize,
}

/// One configured header found on the inbound call, decoded as a User-to-User value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedHeader {
    /// The header's name as configured.
    pub name: String,
    /// Its value, decoded.
    pub uui: Uui,
}

impl CapturedHeader {
    /// The header to send back on the agent leg: the value as received, or `None` when it
    /// was cut (a cut UUI would be corrupt).
    pub fn resend(&self) -> Option<(String, String)> {
        (!self.uui.truncated).then(|| (self.name.clone(), self.uui.raw.clone()))
    }

    /// Adds this header to a metadata object, flat, keyed by the configured name `N`:
    /// `N` the decoded value, `N.raw` the value as received, `N.encoding`, `N.purpose`,
    /// `N.content` when given, and `N.truncated`, `N.badHex`, `N.binary` (`true`) when set.
    /// A header already in the object is left alone (the first occurrence wins).
    pub fn add_to(&self, m: &mut Map<String, Value>) {
        let n = &self.name;
        if m.contains_key(n) {
            return;
        }
        let u = &self.uui;
        m.insert(n.clone(), Value::String(u.value.clone()));
        m.insert(format!("{n}.raw"), Value::String(u.raw.clone()));
        for (k, v) in [
            ("encoding", &u.encoding),
            ("purpose", &u.purpose),
            ("content", &u.content),
        ] {
            if let Some(v) = v {
                m.insert(format!("{n}.{k}"), Value::String(v.clone()));
            }
        }
        for (k, on) in [
            ("truncated", u.truncated),
            ("badHex", u.bad_hex),
            ("binary", u.binary),
        ] {
            if on {
                m.insert(format!("{n}.{k}"), Value::Bool(true));
            }
        }
    }
}

/// Captured headers as a metadata object (see [`CapturedHeader::add_to`]).
pub fn metadata_of(captured: &[CapturedHeader]) -> Map<String, Value> {
    let mut m = Map::new();
    for c in captured {
        c.add_to(&mut m);
    }
    m
}

/// The captured headers to send back on the agent leg (the cut ones are left out).
pub fn resend_headers(captured: &[CapturedHeader]) -> Vec<(String, String)> {
    captured.iter().filter_map(CapturedHeader::resend).collect()
}

impl MetadataSettings {
    /// The configured headers found in `headers`, in configuration order, each decoded
    /// with [`uui::decode`] (over-length values are cut and flagged, never dropped).
    pub fn capture<'a>(
        &self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Vec<CapturedHeader> {
        let mut out = Vec::new();
        for want in &self.headers {
            for (name, value) in headers.clone() {
                if name.eq_ignore_ascii_case(want) {
                    out.push(CapturedHeader {
                        name: want.clone(),
                        uui: uui::decode(value, self.max_length),
                    });
                }
            }
        }
        out
    }
}

/// Everything the callback engine needs to know about one call target.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackSettings {
    /// Organization owning it (`None`: SIP only, not reachable through the API).
    pub organization: Option<String>,
    /// Off: refuses registrations, widgets say `platform_unavailable`.
    pub enabled: bool,
    /// The contact-center SIP URI holdless dials for the agent leg.
    pub contact_center: Option<String>,
    /// Caller ID presented on callbacks (E.164).
    pub caller_id: Option<String>,
    /// Which leg is dialled first.
    pub first_party: FirstParty,
    /// Largest ECBT at which ASAP callbacks are still offered, seconds.
    pub max_ecbt_secs: u64,
    /// Most requested callbacks (pending + waitlisted) at once.
    pub max_requested: u32,
    /// Most callbacks in progress at once.
    pub pacing: u32,
    /// Most callbacks launched per second (0: no limit), so a full queue (after a restart,
    /// at opening) does not send a whole pacing of INVITEs to the trunk at once.
    pub launches_per_sec: u32,
    /// No callback is dialled sooner than this after registration, seconds.
    pub min_delay_secs: u64,
    /// `wasPunctual` tolerance past `estimatedFor`, seconds.
    pub punctual_within_secs: u64,
    /// Business hours.
    pub hours: BusinessHours,
    /// Scheduled callbacks.
    pub scheduled: ScheduledSettings,
    /// Next-business-day callbacks.
    pub next_day: NextDaySettings,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Number rules.
    pub numbers: NumberRules,
    /// SIP metadata capture.
    pub metadata: MetadataSettings,
    /// ECBT estimator settings.
    pub ecbt: EcbtSettings,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        let r = RawRetryPolicy::default();
        let retry = |r: RawRetry| Retry {
            attempts: r.attempts,
            delay_secs: r.delay_secs,
        };
        let s = RawScheduled::default();
        let n = RawNextDay::default();
        let m = RawMetadata::default();
        CallbackSettings {
            organization: None,
            enabled: true,
            contact_center: None,
            caller_id: None,
            first_party: FirstParty::Customer,
            max_ecbt_secs: d_max_ecbt(),
            max_requested: d_max_requested(),
            pacing: d_pacing(),
            launches_per_sec: 0,
            min_delay_secs: 0,
            punctual_within_secs: d_punctual(),
            hours: BusinessHours::always_open(),
            scheduled: ScheduledSettings {
                enabled: s.enabled,
                slot_secs: s.slot_minutes * 60,
                max_per_slot: s.max_per_slot,
                days_ahead: s.days_ahead,
            },
            next_day: NextDaySettings {
                enabled: n.enabled,
                max: n.max,
                delay_secs: n.delay_secs,
            },
            retry: RetryPolicy {
                busy: retry(r.busy),
                no_answer: retry(r.no_answer),
                voicemail: retry(r.voicemail),
                error: retry(r.error),
                max_attempts: r.max_attempts,
            },
            numbers: NumberRules::default(),
            metadata: MetadataSettings {
                headers: m.headers,
                max_length: m.max_length,
            },
            ecbt: EcbtSettings::default(),
        }
    }
}

/// An organization: the tenant the API's tokens and access policy belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Identifier used in API paths.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Bearer tokens that act for this organization.
    pub api_tokens: Vec<String>,
    /// Networks allowed to call the API for this organization.
    pub api_allow: Vec<IpNet>,
}

/// Message templates of a widget by state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetMessages {
    /// Default status message.
    pub default: String,
    /// Per widget state (`offer_callback`, …), overriding the default.
    pub by_state: HashMap<String, String>,
    /// Returned with a registered ASAP or next-day callback.
    pub requested: String,
    /// Returned with a registered scheduled callback.
    pub scheduled: String,
}

/// A widget: the handle contact-center flows use for one call target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widget {
    /// Identifier used in API paths.
    pub id: String,
    /// Its call target.
    pub call_target: String,
    /// The call target's organization.
    pub organization: String,
    /// Inactive widgets are left out of the organization's `widget_status`.
    pub enabled: bool,
    /// Message templates.
    pub messages: WidgetMessages,
}

/// What a message quotes, ready to fill a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteText {
    /// The wait, seconds (`{seconds}`, `{minutes}`).
    pub secs: u64,
    /// The expected local date and time (`{date}` YYYY-MM-DD, `{time}` HH:MM).
    pub date: String,
    /// See `date`.
    pub time: String,
    /// `{when}`: the wait or the day and time in words (see [`super::quote`]).
    pub when: String,
    /// `{wait}`: the wait in words, "about 12 minutes" (see [`super::quote`]).
    pub wait: String,
}

/// Fills a message template: `{when}` ("in less than a minute", "in about 12 minutes",
/// "tomorrow at 09:15" for a next-business-day callback or an appointment), `{wait}`
/// ("less than a minute", "about 12 minutes", "until tomorrow at 09:15"), `{minutes}`
/// (the wait rounded up, at least 1: a caller told "0 minutes" hears a promise nobody can
/// keep), `{seconds}`, `{time}` (HH:MM) and `{date}`. Without a quote they are empty.
pub fn render_template(template: &str, q: Option<&QuoteText>) -> String {
    let minutes = q
        .map(|q| q.secs.div_ceil(60).max(1).to_string())
        .unwrap_or_default();
    let seconds = q.map(|q| q.secs.to_string()).unwrap_or_default();
    let field = |f: fn(&QuoteText) -> &str| q.map(f).unwrap_or_default();
    template
        .replace("{when}", field(|q| &q.when))
        .replace("{wait}", field(|q| &q.wait))
        .replace("{minutes}", &minutes)
        .replace("{seconds}", &seconds)
        .replace("{time}", field(|q| &q.time))
        .replace("{date}", field(|q| &q.date))
}

// ------------------------------------------------------------------ validation

struct Sink<'a>(&'a mut Vec<KeyError>);

impl Sink<'_> {
    fn err(&mut self, key: impl Into<String>, message: impl std::fmt::Display) {
        self.0.push(KeyError {
            key: key.into(),
            message: message.to_string(),
        });
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
}

/// What [`validate`] produces.
pub(crate) struct Validated {
    pub(crate) organizations: Vec<Organization>,
    pub(crate) widgets: Vec<Widget>,
    /// Per call target, in configuration order.
    pub(crate) settings: Vec<CallbackSettings>,
}

/// Validates organizations, the callback settings of every call target, and widgets.
pub(crate) fn validate(
    errors: &mut Vec<KeyError>,
    orgs: &[RawOrganization],
    targets: &[RawCallTarget],
    widgets: &[RawWidget],
) -> Validated {
    let mut s = Sink(errors);
    for (what, n) in [
        ("organizations", orgs.len()),
        ("call_targets", targets.len()),
        ("widgets", widgets.len()),
    ] {
        if n > MAX_ENTITIES {
            s.err(what, format!("{n} entries; at most {MAX_ENTITIES}"));
        }
    }
    let organizations = organizations(&mut s, orgs);
    let org_ids: HashSet<&str> = organizations.iter().map(|o| o.id.as_str()).collect();
    let settings: Vec<CallbackSettings> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| target(&mut s, &format!("call_targets[{i}]"), t, &org_ids))
        .collect();
    let target_orgs: HashMap<&str, Option<&String>> = targets
        .iter()
        .zip(&settings)
        .map(|(t, c)| (t.id.as_str(), c.organization.as_ref()))
        .collect();
    let widgets = widgets_of(&mut s, widgets, &target_orgs);
    Validated {
        organizations,
        widgets,
        settings,
    }
}

fn organizations(s: &mut Sink, raw: &[RawOrganization]) -> Vec<Organization> {
    let mut ids = HashSet::new();
    let mut tokens = HashSet::new();
    let mut out = Vec::new();
    for (i, o) in raw.iter().enumerate() {
        let key = format!("organizations[{i}]");
        if !valid_id(&o.id) {
            s.err(format!("{key}.id"), "must be 1-64 letters, digits, - or _");
        } else if !ids.insert(o.id.as_str()) {
            s.err(
                format!("{key}.id"),
                format!("duplicate organization id {:?}", o.id),
            );
        }
        for (j, t) in o.api_tokens.iter().enumerate() {
            if t.len() < MIN_TOKEN_LEN || t.len() > 512 || !t.bytes().all(|b| b.is_ascii_graphic())
            {
                s.err(
                    format!("{key}.api_tokens[{j}]"),
                    format!("must be {MIN_TOKEN_LEN}-512 printable characters without spaces"),
                );
            } else if !tokens.insert(t.as_str()) {
                s.err(
                    format!("{key}.api_tokens[{j}]"),
                    "this token is already used (a token must name exactly one organization)",
                );
            }
        }
        let mut allow = Vec::new();
        for (j, v) in o.api_allow.iter().enumerate() {
            let parsed = v
                .parse::<IpNet>()
                .or_else(|_| v.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(n) => allow.push(n),
                Err(_) => s.err(
                    format!("{key}.api_allow[{j}]"),
                    format!("not a CIDR network or IP address: {v:?}"),
                ),
            }
        }
        if o.api_allow.is_empty() {
            s.err(
                format!("{key}.api_allow"),
                "empty: no address could use the API (use [\"0.0.0.0/0\", \"::/0\"] to allow all)",
            );
        }
        out.push(Organization {
            id: o.id.clone(),
            name: if o.name.is_empty() {
                o.id.clone()
            } else {
                o.name.clone()
            },
            api_tokens: o.api_tokens.clone(),
            api_allow: allow,
        });
    }
    out
}

fn target(s: &mut Sink, key: &str, t: &RawCallTarget, orgs: &HashSet<&str>) -> CallbackSettings {
    let mut c = CallbackSettings::default();
    let scheduled = t.scheduled.unwrap_or_default();
    let next_day = t.next_day.unwrap_or_default();
    let retry_policy = t.retry.unwrap_or_default();
    let number_raw = RawNumberRules::default();
    let number_raw = t.number_rules.as_ref().unwrap_or(&number_raw);
    let metadata = t.metadata.clone().unwrap_or_default();
    let ecbt = t.ecbt.unwrap_or_default();
    let max_ecbt_secs = t.max_ecbt_secs.unwrap_or_else(d_max_ecbt);
    let max_requested = t.max_requested.unwrap_or_else(d_max_requested);
    let pacing = t.pacing.unwrap_or_else(d_pacing);
    if let Some(o) = &t.organization {
        if !orgs.contains(o.as_str()) {
            s.err(
                format!("{key}.organization"),
                format!("no organization {o:?}"),
            );
        }
        if t.contact_center.is_none() {
            s.err(
                format!("{key}.contact_center"),
                "required for a call target with an organization (the SIP URI dialled for the agent leg)",
            );
        }
    }
    if let Some(cc) = &t.contact_center {
        if crate::sip::uri::parse(cc).is_err() {
            s.err(
                format!("{key}.contact_center"),
                format!("not a SIP or tel URI: {cc:?}"),
            );
        }
    }
    if let Some(cid) = &t.caller_id {
        if !is_e164(cid) {
            s.err(
                format!("{key}.caller_id"),
                format!("not an E.164 number: {cid:?}"),
            );
        }
    }
    for (k, v) in [
        ("max_ecbt_secs", max_ecbt_secs),
        ("max_requested", u64::from(max_requested)),
        ("pacing", u64::from(pacing)),
    ] {
        if v == 0 {
            s.err(format!("{key}.{k}"), "must be above 0");
        }
    }
    if let Some(h) = &t.hours {
        c.hours = hours(s, &format!("{key}.hours"), h);
    }
    let sc = &scheduled;
    if sc.slot_minutes == 0 || sc.slot_minutes > 24 * 60 || (24 * 60) % sc.slot_minutes != 0 {
        s.err(
            format!("{key}.scheduled.slot_minutes"),
            "must divide a day (e.g. 10, 15, 30, 60)",
        );
    }
    if sc.max_per_slot == 0 {
        s.err(format!("{key}.scheduled.max_per_slot"), "must be above 0");
    }
    if sc.days_ahead > 30 {
        s.err(format!("{key}.scheduled.days_ahead"), "at most 30");
    }
    c.scheduled = ScheduledSettings {
        enabled: sc.enabled,
        slot_secs: sc.slot_minutes.saturating_mul(60),
        max_per_slot: sc.max_per_slot,
        days_ahead: sc.days_ahead,
    };
    c.next_day = NextDaySettings {
        enabled: next_day.enabled,
        max: next_day.max,
        delay_secs: next_day.delay_secs,
    };
    let rp = &retry_policy;
    let mut retry = |name: &str, r: RawRetry| {
        if r.attempts == 0 {
            s.err(
                format!("{key}.retry.{name}.attempts"),
                "must be at least 1 (the first attempt)",
            );
        }
        Retry {
            attempts: r.attempts,
            delay_secs: r.delay_secs,
        }
    };
    c.retry = RetryPolicy {
        busy: retry("busy", rp.busy),
        no_answer: retry("no_answer", rp.no_answer),
        voicemail: retry("voicemail", rp.voicemail),
        error: retry("error", rp.error),
        max_attempts: rp.max_attempts,
    };
    if rp.max_attempts == 0 {
        s.err(
            format!("{key}.retry.max_attempts"),
            "must be at least 1 (the first attempt)",
        );
    }
    c.numbers = number_rules(s, &format!("{key}.number_rules"), number_raw);
    if metadata.max_length == 0 || metadata.max_length > 4096 {
        s.err(format!("{key}.metadata.max_length"), "must be 1-4096");
    }
    for (j, h) in metadata.headers.iter().enumerate() {
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b))
        {
            s.err(
                format!("{key}.metadata.headers[{j}]"),
                format!("not a SIP header name: {h:?}"),
            );
        }
    }
    c.metadata = MetadataSettings {
        headers: metadata.headers,
        max_length: metadata.max_length,
    };
    let e = &ecbt;
    if !(e.smoothing > 0.0 && e.smoothing <= 1.0) {
        s.err(
            format!("{key}.ecbt.smoothing"),
            "must be above 0 and at most 1",
        );
    }
    for (k, v) in [
        ("initial_handle_secs", e.initial_handle_secs),
        ("initial_connect_secs", e.initial_connect_secs),
    ] {
        if !(v.is_finite() && (0.0..=86400.0).contains(&v)) {
            s.err(format!("{key}.ecbt.{k}"), "must be 0-86400");
        }
    }
    if !(e.window_percent.is_finite() && (0.0..=100.0).contains(&e.window_percent)) {
        s.err(format!("{key}.ecbt.window_percent"), "must be 0-100");
    }
    if !(e.margin.is_finite() && (0.0..=MAX_MARGIN).contains(&e.margin)) {
        s.err(
            format!("{key}.ecbt.margin"),
            format!("must be 0-{MAX_MARGIN}"),
        );
    }
    c.ecbt = EcbtSettings {
        initial_handle_secs: e.initial_handle_secs,
        initial_connect_secs: e.initial_connect_secs,
        smoothing: e.smoothing,
        hold_early: e.hold_early,
        window_percent: e.window_percent,
        margin: e.margin,
        adaptive: e.adaptive,
    };
    c.organization = t.organization.clone();
    c.enabled = t.enabled.unwrap_or(true);
    c.contact_center = t.contact_center.clone();
    c.caller_id = t.caller_id.clone();
    c.first_party = t.first_party.unwrap_or(FirstParty::Customer);
    c.max_ecbt_secs = max_ecbt_secs;
    c.max_requested = max_requested;
    c.pacing = pacing;
    c.launches_per_sec = t.launches_per_sec.unwrap_or(0);
    c.min_delay_secs = t.min_delay_secs.unwrap_or(0);
    c.punctual_within_secs = t.punctual_within_secs.unwrap_or_else(d_punctual);
    c
}

fn hours(s: &mut Sink, key: &str, h: &RawHours) -> BusinessHours {
    let tz: Tz = match h.time_zone.parse() {
        Ok(tz) => tz,
        Err(_) => {
            s.err(
                format!("{key}.time_zone"),
                format!(
                    "not an IANA time zone (e.g. America/New_York): {:?}",
                    h.time_zone
                ),
            );
            Tz::UTC
        }
    };
    let days = [
        ("mon", &h.mon),
        ("tue", &h.tue),
        ("wed", &h.wed),
        ("thu", &h.thu),
        ("fri", &h.fri),
        ("sat", &h.sat),
        ("sun", &h.sun),
    ];
    let mut week: [Vec<Span>; 7] = Default::default();
    for (i, (name, spans)) in days.into_iter().enumerate() {
        let (k, list) = match (spans, &h.daily) {
            (Some(l), _) => (format!("{key}.{name}"), l),
            (None, Some(l)) => (format!("{key}.daily"), l),
            (None, None) => continue,
        };
        for (j, v) in list.iter().enumerate() {
            match Span::parse(v) {
                Ok(sp) => week[i].push(sp),
                Err(e) => s.err(format!("{k}[{j}]"), e),
            }
        }
    }
    let mut holidays = BTreeSet::new();
    for (j, d) in h.holidays.iter().enumerate() {
        match d.parse::<NaiveDate>() {
            Ok(d) => {
                holidays.insert(d);
            }
            Err(_) => s.err(
                format!("{key}.holidays[{j}]"),
                format!("not a date (YYYY-MM-DD): {d:?}"),
            ),
        }
    }
    BusinessHours::new(tz, week, holidays)
}

fn digits(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

fn number_rules(s: &mut Sink, key: &str, r: &RawNumberRules) -> NumberRules {
    let mut out = NumberRules::default();
    for (j, c) in r.allowed.iter().enumerate() {
        if !digits(&c.country_code) || c.country_code.len() > 3 || c.country_code.starts_with('0') {
            s.err(
                format!("{key}.allowed[{j}].country_code"),
                format!(
                    "not a country code (1-3 digits, e.g. \"1\", \"44\"): {:?}",
                    c.country_code
                ),
            );
        }
        if c.lengths.iter().any(|&l| l == 0 || l > 14) {
            s.err(
                format!("{key}.allowed[{j}].lengths"),
                "lengths must be 1-14 digits",
            );
        }
        out.allowed.push(CountryRule {
            cc: c.country_code.clone(),
            lengths: c.lengths.clone(),
        });
    }
    if let Some(cc) = &r.default_country_code {
        if !out.allowed.iter().any(|c| &c.cc == cc) {
            s.err(
                format!("{key}.default_country_code"),
                "must be one of the allowed country codes (its lengths say which national numbers get it)",
            );
        }
        out.default_country = Some(cc.clone());
    }
    let prefix_ok = |p: &str| {
        p.strip_prefix('+')
            .is_some_and(|d| digits(d) && d.len() <= 15)
    };
    for (j, p) in r.blocked_prefixes.iter().enumerate() {
        if !prefix_ok(p) {
            s.err(
                format!("{key}.blocked_prefixes[{j}]"),
                format!("not an E.164 prefix (+ and digits): {p:?}"),
            );
        }
        out.blocked.push(p.clone());
    }
    for (j, rate) in r.rates.iter().enumerate() {
        if !prefix_ok(&rate.prefix) {
            s.err(
                format!("{key}.rates[{j}].prefix"),
                format!("not an E.164 prefix (+ and digits): {:?}", rate.prefix),
            );
        }
        match Rate::from_decimal(rate.per_minute) {
            Some(v) => out.rates.push((rate.prefix.clone(), v)),
            None => s.err(
                format!("{key}.rates[{j}].per_minute"),
                "must be a price of 0 or more",
            ),
        }
    }
    if let Some(m) = r.max_rate {
        match Rate::from_decimal(m) {
            Some(v) => out.max_rate = Some(v),
            None => s.err(format!("{key}.max_rate"), "must be a price of 0 or more"),
        }
    }
    out
}

fn template(s: &mut Sink, key: &str, t: &str) {
    if t.len() > MAX_TEMPLATE {
        s.err(key, format!("longer than {MAX_TEMPLATE} characters"));
    }
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j) if PLACEHOLDERS.contains(&&after[..j]) => rest = &after[j + 1..],
            _ => {
                s.err(
                    key,
                    format!("unknown placeholder; use {{when}}, {{wait}}, {{minutes}}, {{seconds}}, {{time}} or {{date}}: {t:?}"),
                );
                return;
            }
        }
    }
}

fn widgets_of(
    s: &mut Sink,
    raw: &[RawWidget],
    targets: &HashMap<&str, Option<&String>>,
) -> Vec<Widget> {
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for (i, w) in raw.iter().enumerate() {
        let key = format!("widgets[{i}]");
        if !valid_id(&w.id) {
            s.err(format!("{key}.id"), "must be 1-64 letters, digits, - or _");
        } else if !ids.insert(w.id.as_str()) {
            s.err(
                format!("{key}.id"),
                format!("duplicate widget id {:?}", w.id),
            );
        }
        let org = match targets.get(w.call_target.as_str()) {
            None => {
                s.err(
                    format!("{key}.call_target"),
                    format!("no call target {:?}", w.call_target),
                );
                String::new()
            }
            Some(None) => {
                s.err(
                    format!("{key}.call_target"),
                    format!("call target {:?} has no organization", w.call_target),
                );
                String::new()
            }
            Some(Some(o)) => (*o).clone(),
        };
        template(s, &format!("{key}.message"), &w.message);
        template(s, &format!("{key}.requested_message"), &w.requested_message);
        template(s, &format!("{key}.scheduled_message"), &w.scheduled_message);
        let m = &w.messages;
        let mut by_state = HashMap::new();
        for (state, t) in [
            ("offer_callback", &m.offer_callback),
            ("offer_asap_callback", &m.offer_asap_callback),
            ("offer_scheduled_callback", &m.offer_scheduled_callback),
            ("display_ewt_only", &m.display_ewt_only),
            ("platform_unavailable", &m.platform_unavailable),
        ] {
            if let Some(t) = t {
                template(s, &format!("{key}.messages.{state}"), t);
                by_state.insert(state.to_owned(), t.clone());
            }
        }
        out.push(Widget {
            id: w.id.clone(),
            call_target: w.call_target.clone(),
            organization: org,
            enabled: w.enabled,
            messages: WidgetMessages {
                default: w.message.clone(),
                by_state,
                requested: w.requested_message.clone(),
                scheduled: w.scheduled_message.clone(),
            },
        });
    }
    out
}

/// One `[[call_targets]]` table as written: the callback section's keys (validated here),
/// the IVR's (validated by `crate::call::ivr::config`) and the routing keys the
/// configuration file itself checks.
#[derive(Debug, Deserialize)]
pub(crate) struct RawCallTarget {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) numbers: Vec<String>,
    // Callback settings, validated by crate::callback::config (defaults there).
    #[serde(default)]
    pub(crate) organization: Option<String>,
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) contact_center: Option<String>,
    #[serde(default)]
    pub(crate) caller_id: Option<String>,
    #[serde(default)]
    pub(crate) first_party: Option<crate::callback::FirstParty>,
    #[serde(default)]
    pub(crate) max_ecbt_secs: Option<u64>,
    #[serde(default)]
    pub(crate) max_requested: Option<u32>,
    #[serde(default)]
    pub(crate) pacing: Option<u32>,
    #[serde(default)]
    pub(crate) launches_per_sec: Option<u32>,
    #[serde(default)]
    pub(crate) min_delay_secs: Option<u64>,
    #[serde(default)]
    pub(crate) punctual_within_secs: Option<u64>,
    #[serde(default)]
    pub(crate) hours: Option<RawHours>,
    #[serde(default)]
    pub(crate) scheduled: Option<RawScheduled>,
    #[serde(default)]
    pub(crate) next_day: Option<RawNextDay>,
    #[serde(default)]
    pub(crate) retry: Option<RawRetryPolicy>,
    #[serde(default)]
    pub(crate) number_rules: Option<RawNumberRules>,
    #[serde(default)]
    pub(crate) metadata: Option<RawMetadata>,
    #[serde(default)]
    pub(crate) ecbt: Option<RawEcbt>,
    #[serde(default)]
    pub(crate) bridge_to: Option<String>,
    /// `off`, `optional` or `required`: SRTP on the legs facing the contact center.
    #[serde(default)]
    pub(crate) srtp: Option<crate::media::srtp::SrtpPolicy>,
    // IVR settings, validated by crate::call::ivr::config (defaults there).
    #[serde(default)]
    pub(crate) ivr: Option<String>,
    #[serde(default)]
    pub(crate) not_offering: Option<String>,
    #[serde(default)]
    pub(crate) reject_status: Option<u16>,
    #[serde(default)]
    pub(crate) input_timeout_secs: Option<u64>,
    #[serde(default)]
    pub(crate) max_quoted_minutes: Option<u32>,
    #[serde(default)]
    pub(crate) prompts: Option<String>,
    #[serde(default)]
    pub(crate) menu_retries: Option<u32>,
    // Dialler settings, validated by crate::call::dialler::config.
    #[serde(default)]
    pub(crate) dialler: Option<crate::call::dialler::config::RawDialler>,
}

#[cfg(test)]
mod tests {
    use super::{metadata_of, resend_headers};
    use crate::config::Config;

    const BASE: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
[[organizations]]
id = "demo"
api_tokens = ["demo-token"]
api_allow = ["127.0.0.0/8", "::1"]
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
organization = "demo"
contact_center = "sip:+15550009999@127.0.0.1:5090"
caller_id = "+15550001000"
first_party = "agent"
pacing = 3
[call_targets.hours]
time_zone = "America/New_York"
daily = ["09:00-17:00"]
sat = []
sun = []
holidays = ["2026-12-25"]
[call_targets.scheduled]
enabled = true
slot_minutes = 30
[call_targets.retry]
busy = { attempts = 4, delay_secs = 30 }
[call_targets.number_rules]
allowed = [{ country_code = "1", lengths = [10] }]
default_country_code = "1"
blocked_prefixes = ["+1900"]
max_rate = 0.05
rates = [{ prefix = "+1", per_minute = 0.01 }]
[[widgets]]
id = "billing-widget"
call_target = "billing"
message = "About {minutes} min"
"#;

    #[test]
    fn a_full_callback_config_loads() {
        let c = Config::parse(BASE).unwrap_or_else(|e| panic!("{e:?}"));
        let t = &c.call_targets[0];
        assert_eq!(t.organization.as_deref(), Some("demo"));
        let cb = &t.callback;
        assert_eq!(cb.pacing, 3);
        assert_eq!(cb.first_party, crate::callback::FirstParty::Agent);
        assert_eq!(cb.scheduled.slot_secs, 1800);
        assert_eq!(cb.retry.busy.attempts, 4);
        assert_eq!(cb.retry.no_answer.attempts, 3, "defaults fill the rest");
        assert_eq!(cb.numbers.check("555-123-4567").unwrap(), "+15551234567");
        assert_eq!(cb.metadata.headers, ["X-User-To-User", "User-to-User"]);
        assert_eq!(c.organizations[0].api_tokens, ["demo-token"]);
        assert_eq!(c.widgets[0].organization, "demo");
        assert_eq!(c.widgets[0].messages.default, "About {minutes} min");
    }

    #[test]
    fn old_style_call_targets_still_load() {
        let old = r#"
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
"#;
        let c = Config::parse(old).unwrap();
        assert_eq!(c.call_targets[0].organization, None);
        assert!(c.call_targets[0].callback.hours.is_open(chrono::Utc::now()));
    }

    fn keys(text: &str) -> Vec<String> {
        Config::parse(text)
            .unwrap_err()
            .into_iter()
            .map(|e| e.key)
            .collect()
    }

    #[test]
    fn every_mistake_names_its_key() {
        let bad = BASE
            .replace("America/New_York", "Mars/Olympus")
            .replace("\"09:00-17:00\"", "\"17:00-09:00\"")
            .replace("2026-12-25", "Christmas")
            .replace("slot_minutes = 30", "slot_minutes = 7\nbogus = 1")
            .replace("attempts = 4", "attempts = 0")
            .replace("\"+1900\"", "\"1900\"")
            .replace("About {minutes} min", "About {hours} h")
            .replace("caller_id = \"+15550001000\"", "caller_id = \"x\"")
            .replace("contact_center = \"sip:", "contact_center = \"http:");
        let k = keys(&bad);
        for want in [
            "call_targets[0].hours.time_zone",
            "call_targets[0].hours.daily[0]",
            "call_targets[0].hours.holidays[0]",
            "call_targets[0].scheduled.slot_minutes",
            "call_targets[0].scheduled.bogus",
            "call_targets[0].retry.busy.attempts",
            "call_targets[0].number_rules.blocked_prefixes[0]",
            "widgets[0].message",
            "call_targets[0].caller_id",
            "call_targets[0].contact_center",
        ] {
            assert!(k.iter().any(|x| x == want), "{want} not in {k:?}");
        }
    }

    #[test]
    fn hold_early_and_its_window_are_read_and_checked() {
        let on = format!("{BASE}\n[call_targets.ecbt]\nhold_early = true\nwindow_percent = 25\n");
        let c = Config::parse(&on).unwrap_or_else(|e| panic!("{e:?}"));
        let e = &c.call_targets[0].callback.ecbt;
        assert!(e.hold_early);
        assert_eq!(e.window_percent, 25.0);
        let default = Config::parse(BASE).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            !default.call_targets[0].callback.ecbt.hold_early,
            "off by default"
        );
        let bad = on.replace("window_percent = 25", "window_percent = 120");
        assert_eq!(keys(&bad), ["call_targets[0].ecbt.window_percent"]);
        assert_eq!(default.call_targets[0].callback.ecbt.margin, 0.0);
        assert!(!default.call_targets[0].callback.ecbt.adaptive);
        let a = format!("{on}adaptive = true\n");
        assert!(
            Config::parse(&a)
                .unwrap_or_else(|e| panic!("{e:?}"))
                .call_targets[0]
                .callback
                .ecbt
                .adaptive
        );
        let m = format!("{on}margin = 1.5\n");
        let c = Config::parse(&m).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.call_targets[0].callback.ecbt.margin, 1.5);
        assert_eq!(
            keys(&m.replace("margin = 1.5", "margin = -1")),
            ["call_targets[0].ecbt.margin"]
        );
    }

    #[test]
    fn cross_references_are_checked() {
        let bad = BASE
            .replace("organization = \"demo\"", "organization = \"nobody\"")
            .replace("call_target = \"billing\"", "call_target = \"sales\"");
        let k = keys(&bad);
        assert!(
            k.contains(&"call_targets[0].organization".to_string()),
            "{k:?}"
        );
        assert!(k.contains(&"widgets[0].call_target".to_string()), "{k:?}");
        let shared = format!(
            "{BASE}\n[[organizations]]\nid = \"other\"\napi_tokens = [\"demo-token\"]\napi_allow = [\"::1\"]\n"
        );
        assert_eq!(keys(&shared), ["organizations[1].api_tokens[0]"]);
        let no_allow = BASE.replace("api_allow = [\"127.0.0.0/8\", \"::1\"]", "");
        assert_eq!(keys(&no_allow), ["organizations[0].api_allow"]);
        let short = BASE.replace("\"demo-token\"", "\"abc\"");
        assert_eq!(keys(&short), ["organizations[0].api_tokens[0]"]);
        let no_cc = BASE.replace("contact_center = \"sip:+15550009999@127.0.0.1:5090\"", "");
        assert_eq!(keys(&no_cc), ["call_targets[0].contact_center"]);
    }

    #[test]
    fn unknown_keys_in_inline_tables_are_errors() {
        let bad = BASE.replace(
            "busy = { attempts = 4, delay_secs = 30 }",
            "busy = { attempts = 4, delay = 30 }",
        );
        assert!(!keys(&bad).is_empty());
        let bad = BASE.replace("[[widgets]]", "[[widgets]]\ncolour = \"red\"");
        assert_eq!(keys(&bad), ["widgets[0].colour"]);
    }

    #[test]
    fn metadata_capture_is_case_insensitive_decoded_and_bounded() {
        let c = Config::parse(BASE).unwrap();
        let m = &c.call_targets[0].callback.metadata;
        let long = "a".repeat(300);
        let hdrs = [
            ("x-user-to-user", " 4142;encoding=hex "),
            ("Via", "SIP/2.0/UDP x"),
            ("USER-TO-USER", long.as_str()),
        ];
        let got = m.capture(hdrs.iter().copied());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "X-User-To-User");
        assert_eq!(got[0].uui.value, "AB");
        assert_eq!(got[1].name, "User-to-User");
        assert_eq!(got[1].uui.value.len(), m.max_length);
        assert!(got[1].uui.truncated);
        // The cut one is not sent back on the agent leg.
        assert_eq!(
            resend_headers(&got),
            [(
                "X-User-To-User".to_string(),
                "4142;encoding=hex".to_string()
            )]
        );
        let json = serde_json::Value::Object(metadata_of(&got));
        assert_eq!(
            json,
            serde_json::json!({
                "X-User-To-User": "AB",
                "X-User-To-User.raw": "4142;encoding=hex",
                "X-User-To-User.encoding": "hex",
                "User-to-User": "a".repeat(256),
                "User-to-User.raw": "a".repeat(256),
                "User-to-User.truncated": true,
            })
        );
    }

    #[test]
    fn templates_render() {
        use super::{render_template, QuoteText};
        let q = |secs: u64, when: &str| QuoteText {
            secs,
            date: "2026-01-02".into(),
            time: "09:30".into(),
            when: when.into(),
            wait: "about 2 minutes".into(),
        };
        assert_eq!(
            render_template("in {minutes} min ({seconds} s)", Some(&q(61, ""))),
            "in 2 min (61 s)"
        );
        assert_eq!(render_template("{minutes}", Some(&q(0, ""))), "1");
        assert_eq!(
            render_template("[{minutes}][{when}][{wait}]", None),
            "[][][]"
        );
        assert_eq!(
            render_template("The wait is {wait}.", Some(&q(100, ""))),
            "The wait is about 2 minutes."
        );
        assert_eq!(
            render_template("at {date} {time}", Some(&q(0, ""))),
            "at 2026-01-02 09:30"
        );
        assert_eq!(
            render_template(
                "We can call you back {when}.",
                Some(&q(40, "in less than a minute"))
            ),
            "We can call you back in less than a minute."
        );
    }
}
