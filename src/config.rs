//! Typed configuration, read from TOML and validated before anything binds a port.
//! Every problem is reported with its key path (`sip.udp[0]`), all of them at once.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::callback::config::{self as cbc, RawCallTarget, RawOrganization, RawWidget};
use crate::callback::number::is_e164;
use crate::callback::{CallbackSettings, Organization, Widget};
pub use crate::key_error::KeyError;

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but has errors.
    #[error("{}", render(file, errors))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Every error found.
        errors: Vec<KeyError>,
    },
}

fn render(file: &Path, errors: &[KeyError]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}: {}", file.display(), e.key, e.message))
        .collect();
    lines.join("\n")
}

/// What to do with a request that a policy refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefuseAction {
    /// Answer (403 for the ACL, 503 with Retry-After for the flood guard).
    Reject,
    /// Say nothing: what you want against scanners.
    Drop,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawConfig {
    sip: RawSip,
    http: RawHttp,
    store: RawStore,
    acl: RawAcl,
    flood: RawFlood,
    egress: RawEgress,
    call_targets: Vec<RawCallTarget>,
    organizations: Vec<RawOrganization>,
    widgets: Vec<RawWidget>,
    calls: crate::call::config::RawCalls,
    media: crate::media::config::MediaSettings,
    trunks: Vec<crate::call::trunk::RawTrunk>,
    dns: crate::resolve::config::RawDns,
    cluster: crate::cluster::config::RawCluster,
    admin: crate::cluster::config::RawAdmin,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            sip: RawSip::default(),
            http: RawHttp {
                listen: "127.0.0.1:8080".into(),
            },
            store: RawStore::default(),
            acl: RawAcl {
                action: RefuseAction::Reject,
                allow: vec![],
                deny: vec![],
            },
            flood: RawFlood::default(),
            egress: RawEgress { allow: vec![] },
            call_targets: vec![],
            organizations: vec![],
            widgets: vec![],
            calls: Default::default(),
            media: Default::default(),
            trunks: vec![],
            dns: Default::default(),
            cluster: Default::default(),
            admin: Default::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawSip {
    udp: Vec<String>,
    tcp: Vec<String>,
    tls: Vec<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    tcp_idle_timeout_secs: u64,
    user_agent: String,
    engine_threads: usize,
    timers: RawTimers,
}

impl Default for RawSip {
    fn default() -> Self {
        RawSip {
            udp: vec![],
            tcp: vec![],
            tls: vec![],
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_ca: None,
            tcp_idle_timeout_secs: 300,
            user_agent: "holdless".into(),
            engine_threads: 0,
            timers: RawTimers::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawTimers {
    t1_ms: u64,
    t2_ms: u64,
    t4_ms: u64,
}

impl Default for RawTimers {
    fn default() -> Self {
        RawTimers {
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawHttp {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawStore {
    data_dir: String,
    url: Option<String>,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            data_dir: "data".into(),
            url: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawAcl {
    action: RefuseAction,
    allow: Vec<String>,
    deny: Vec<String>,
}

impl Default for RawAcl {
    fn default() -> Self {
        RawAcl {
            action: RefuseAction::Reject,
            allow: vec![],
            deny: vec![],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawFlood {
    max_requests: u32,
    window_ms: u64,
    action: RefuseAction,
    retry_after_secs: u32,
}

impl Default for RawFlood {
    fn default() -> Self {
        RawFlood {
            max_requests: 200,
            window_ms: 1000,
            action: RefuseAction::Reject,
            retry_after_secs: 5,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawEgress {
    allow: Vec<String>,
}

/// SIP listeners and protocol settings.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// UDP listening addresses.
    pub udp: Vec<SocketAddr>,
    /// TCP listening addresses.
    pub tcp: Vec<SocketAddr>,
    /// TLS listening addresses (SIP over TLS, RFC 3261 §26.2; 5061 by convention).
    pub tls: Vec<SocketAddr>,
    /// Certificate, key and CAs for SIP over TLS (required with TLS listeners).
    pub tls_files: Option<crate::tls::TlsFiles>,
    /// CA certificates (PEM) that servers holdless connects to over TLS must chain to;
    /// `None`: the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// A TCP connection with no traffic for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// Server / User-Agent header value.
    pub user_agent: String,
    /// RFC 3261 T1 (RTT estimate).
    pub t1: Duration,
    /// RFC 3261 T2 (retransmit cap).
    pub t2: Duration,
    /// RFC 3261 T4 (how long a message may stay in the network).
    pub t4: Duration,
    /// SIP engines, each owning the calls whose Call-ID hashes to it (`0` in the file: one
    /// per CPU).
    pub engine_threads: usize,
}

/// Most SIP engines accepted: each is a shard of the call table; beyond the CPUs they only
/// add switching.
pub const MAX_ENGINE_THREADS: usize = 64;

/// The IP access-control list for signalling.
#[derive(Debug, Clone)]
pub struct AclConfig {
    /// Reject with 403 or drop silently.
    pub action: RefuseAction,
    /// Allowed networks; a source must match one.
    pub allow: Vec<IpNet>,
    /// Denied networks; these win over `allow`.
    pub deny: Vec<IpNet>,
}

/// The per-source flood guard.
#[derive(Debug, Clone)]
pub struct FloodConfig {
    /// Requests allowed per source address per window.
    pub max_requests: u32,
    /// The window.
    pub window: Duration,
    /// 503 with Retry-After, or drop.
    pub action: RefuseAction,
    /// Retry-After seconds in the 503.
    pub retry_after_secs: u32,
}

/// A call target: the numbers it owns and its callback settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CallTarget {
    /// Stable identifier used in the API and records.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Dialled numbers (E.164) this target owns.
    pub numbers: Vec<String>,
    /// Organization owning it (`None`: not reachable through the Scheduler API).
    pub organization: Option<String>,
    /// Callback engine settings (hours, pacing, ECBT, retries, number rules, …).
    pub callback: CallbackSettings,
    /// When set, every inbound call is bridged straight to this SIP URI (the contact
    /// center), the "keep holding" path.
    pub bridge_to: Option<String>,
    /// Media security of the legs facing the contact center: the transferred caller's,
    /// the agent's and a bridged or held call's second leg.
    pub srtp: crate::media::srtp::SrtpPolicy,
    /// The inbound caller's conversation: menu, not-offering handling, prompts.
    pub ivr: crate::call::ivr::IvrSettings,
    /// How its callbacks are dialled.
    pub dialler: crate::call::dialler::DiallerSettings,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// SIP listeners and timers.
    pub sip: SipConfig,
    /// HTTP listener address.
    pub http_listen: SocketAddr,
    /// Directory of the embedded store (its file unless `store.url` says otherwise).
    pub data_dir: PathBuf,
    /// Where the callback store lives: `store.url`, else `holdless.sqlite3` in `data_dir`.
    pub store: crate::store::Location,
    /// Signalling ACL.
    pub acl: AclConfig,
    /// Flood guard.
    pub flood: FloodConfig,
    /// Networks holdless may send SIP and RTP to.
    pub egress_allow: Vec<IpNet>,
    /// Call targets.
    pub call_targets: Vec<CallTarget>,
    /// Organizations (Scheduler API tenants).
    pub organizations: Vec<Organization>,
    /// Widgets of the Scheduler API.
    pub widgets: Vec<Widget>,
    /// Bridged-call settings.
    pub calls: crate::call::config::CallSettings,
    /// This node among several on one database, and the admin listener.
    pub cluster: crate::cluster::config::ClusterSettings,
    /// Media relay settings.
    pub media: crate::media::config::MediaConfig,
    /// Trunks calls are placed through.
    pub trunks: Vec<crate::call::trunk::Trunk>,
    /// DNS for trunk and contact-center host names.
    pub dns: crate::resolve::config::DnsSettings,
}

impl Config {
    /// The call targets as the callback engine sees them.
    pub fn engine_targets(&self) -> Vec<crate::callback::TargetConfig> {
        self.call_targets
            .iter()
            .map(|t| crate::callback::TargetConfig {
                id: t.id.clone(),
                name: t.name.clone(),
                settings: t.callback.clone(),
            })
            .collect()
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|errors| ConfigError::Invalid {
            file: path.to_owned(),
            errors,
        })
    }

    /// Validates configuration text; every error found, with its key path: unknown keys,
    /// values of the wrong type (the first in each section) and, for the sections that
    /// could be read, every validation error.
    pub fn parse(text: &str) -> Result<Config, Vec<KeyError>> {
        let table: toml::Table = toml::from_str(text).map_err(|e| vec![syntax_error(&e)])?;
        let mut errors = Vec::new();
        let (raw, unread) = read_sections(table, &mut errors);
        let mut checks = Vec::new();
        let cfg = validate(raw, &mut checks);
        // A section that could not be read stands at its defaults: what validation says
        // about it (and, for the callback sections, which refer to each other, about them
        // all) would be noise.
        let mut skip = unread.clone();
        if unread.iter().any(|s| CALLBACK_SECTIONS.contains(s)) {
            skip.extend(CALLBACK_SECTIONS);
        }
        checks.retain(|e| !skip.iter().any(|s| under(&e.key, s)));
        errors.extend(checks);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }
}

/// Sections whose validation looks across all of them (a widget names an organization and
/// call targets; a call target names its organization).
const CALLBACK_SECTIONS: [&str; 3] = ["organizations", "call_targets", "widgets"];

/// Whether `key` is `section` or a key inside it.
fn under(key: &str, section: &str) -> bool {
    key.strip_prefix(section)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// Reads each top-level section on its own, so a type error in one hides nothing in the
/// others. Gives the configuration (sections that failed left at their defaults) and the
/// names of the sections that failed.
fn read_sections(table: toml::Table, errors: &mut Vec<KeyError>) -> (RawConfig, Vec<&'static str>) {
    let mut raw = RawConfig::default();
    let mut unread = Vec::new();
    for (key, value) in table {
        macro_rules! read {
            ($field:ident) => {
                match section(stringify!($field), value, errors) {
                    Some(v) => raw.$field = v,
                    None => unread.push(stringify!($field)),
                }
            };
        }
        match key.as_str() {
            "sip" => read!(sip),
            "http" => read!(http),
            "store" => read!(store),
            "acl" => read!(acl),
            "flood" => read!(flood),
            "egress" => read!(egress),
            "call_targets" => read!(call_targets),
            "organizations" => read!(organizations),
            "widgets" => read!(widgets),
            "calls" => read!(calls),
            "media" => read!(media),
            "trunks" => read!(trunks),
            "dns" => read!(dns),
            "cluster" => read!(cluster),
            "admin" => read!(admin),
            _ => errors.push(KeyError {
                key,
                message: "unknown key".into(),
            }),
        }
    }
    (raw, unread)
}

/// One section: its unknown keys, then its value or the first type error in it.
fn section<T: serde::de::DeserializeOwned>(
    name: &str,
    value: toml::Value,
    errors: &mut Vec<KeyError>,
) -> Option<T> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path| unknown.push(key_path(&path));
    let de = serde_ignored::Deserializer::new(value, &mut note);
    let read = serde_path_to_error::deserialize::<_, T>(de);
    errors.extend(unknown.into_iter().map(|inner| KeyError {
        key: join(name, &inner),
        message: "unknown key".into(),
    }));
    match read {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = match e.path().to_string() {
                p if p == "." => String::new(),
                p => p,
            };
            errors.push(KeyError {
                key: join(name, &inner),
                message: e.into_inner().message().to_owned(),
            });
            None
        }
    }
}

/// `sip` + `timers.t1_ms` → `sip.timers.t1_ms`; `call_targets` + `[0].id` →
/// `call_targets[0].id`.
fn join(section: &str, inner: &str) -> String {
    match inner {
        "" => section.to_owned(),
        i if i.starts_with('[') => format!("{section}{i}"),
        i => format!("{section}.{i}"),
    }
}

/// `call_targets[0].hours.bogus`, like every other key in our errors (serde_ignored would
/// say `call_targets.0.hours.?.bogus`).
fn key_path(p: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => match key_path(parent) {
            s if s.is_empty() => key.clone(),
            s => format!("{s}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

fn syntax_error(e: &toml::de::Error) -> KeyError {
    KeyError {
        key: "(syntax)".into(),
        message: e.message().to_owned(),
    }
}

struct Check<'a>(&'a mut Vec<KeyError>);

impl Check<'_> {
    fn err(&mut self, key: impl Into<String>, message: impl fmt::Display) {
        self.0.push(KeyError {
            key: key.into(),
            message: message.to_string(),
        });
    }

    fn addrs(&mut self, key: &str, values: &[String]) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            match v.parse() {
                Ok(a) => out.push(a),
                Err(_) => self.err(
                    format!("{key}[{i}]"),
                    format!("not an IP:port socket address: {v:?}"),
                ),
            }
        }
        out
    }

    fn nets(&mut self, key: &str, values: &[String]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let parsed = v
                .parse::<IpNet>()
                .or_else(|_| v.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(n) => out.push(n),
                Err(_) => self.err(
                    format!("{key}[{i}]"),
                    format!("not a CIDR network or IP address: {v:?}"),
                ),
            }
        }
        out
    }
}

fn validate(raw: RawConfig, errors: &mut Vec<KeyError>) -> Config {
    let mut c = Check(errors);
    let udp = c.addrs("sip.udp", &raw.sip.udp);
    let tcp = c.addrs("sip.tcp", &raw.sip.tcp);
    let tls = c.addrs("sip.tls", &raw.sip.tls);
    if raw.sip.udp.is_empty() && raw.sip.tcp.is_empty() && raw.sip.tls.is_empty() {
        c.err("sip", "no listener: set sip.udp, sip.tcp and/or sip.tls");
    }
    let tls_files = match (&raw.sip.tls_cert, &raw.sip.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: raw.sip.tls_client_ca.clone(),
        }),
        (None, None) => {
            if !raw.sip.tls.is_empty() {
                c.err("sip.tls_cert", "TLS listeners need a certificate chain and key (sip.tls_cert, sip.tls_key: PEM files)");
            }
            if raw.sip.tls_client_ca.is_some() {
                c.err("sip.tls_client_ca", "needs sip.tls_cert and sip.tls_key");
            }
            None
        }
        (None, Some(_)) => {
            c.err(
                "sip.tls_cert",
                "sip.tls_key is set: the certificate chain (PEM) is missing",
            );
            None
        }
        (Some(_), None) => {
            c.err(
                "sip.tls_key",
                "sip.tls_cert is set: its private key (PEM) is missing",
            );
            None
        }
    };
    let t = &raw.sip.timers;
    if t.t1_ms == 0 {
        c.err("sip.timers.t1_ms", "must be above 0");
    }
    if t.t2_ms < t.t1_ms {
        c.err("sip.timers.t2_ms", "must be at least t1_ms");
    }
    if t.t4_ms == 0 {
        c.err("sip.timers.t4_ms", "must be above 0");
    }
    if raw.sip.tcp_idle_timeout_secs == 0 {
        c.err("sip.tcp_idle_timeout_secs", "must be above 0");
    }
    if raw.sip.engine_threads > MAX_ENGINE_THREADS {
        c.err(
            "sip.engine_threads",
            format!("at most {MAX_ENGINE_THREADS} (0 = one per CPU)"),
        );
    }
    let http_listen = c.addrs("http.listen", std::slice::from_ref(&raw.http.listen));
    let allow = c.nets("acl.allow", &raw.acl.allow);
    if raw.acl.allow.is_empty() {
        c.err(
            "acl.allow",
            "empty: no address could reach holdless (use 0.0.0.0/0 to allow all)",
        );
    }
    let deny = c.nets("acl.deny", &raw.acl.deny);
    let egress_allow = c.nets("egress.allow", &raw.egress.allow);
    if raw.egress.allow.is_empty() {
        c.err(
            "egress.allow",
            "empty: holdless could not send anything (set the networks it may reach)",
        );
    }
    if raw.flood.max_requests == 0 {
        c.err("flood.max_requests", "must be above 0");
    }
    if raw.flood.window_ms == 0 {
        c.err("flood.window_ms", "must be above 0");
    }
    if raw.store.data_dir.is_empty() {
        c.err("store.data_dir", "must not be empty");
    }
    let store = match raw.store.url.as_deref().map(crate::store::Location::parse) {
        None => crate::store::Location::Sqlite(
            PathBuf::from(&raw.store.data_dir).join(crate::store::sqlite::FILE_NAME),
        ),
        Some(Ok(l)) => l,
        Some(Err(e)) => {
            c.err("store.url", e);
            crate::store::Location::Sqlite(PathBuf::new())
        }
    };
    let mut call_targets = call_targets(&mut c, &raw.call_targets);
    let cb = cbc::validate(c.0, &raw.organizations, &raw.call_targets, &raw.widgets);
    for (t, settings) in call_targets.iter_mut().zip(cb.settings) {
        t.organization = settings.organization.clone();
        t.callback = settings;
    }
    let calls = raw.calls.validate(c.0);
    let media = raw.media.validate(c.0).unwrap_or_default();
    let trunks = crate::call::trunk::validate(c.0, &raw.trunks);
    let dns = raw.dns.validate(c.0);
    let cluster = raw.cluster.validate(&raw.admin, c.0);
    for (i, t) in call_targets.iter().enumerate() {
        for (k, id) in [
            ("customer_trunk", &t.dialler.customer_trunk),
            ("agent_trunk", &t.dialler.agent_trunk),
        ] {
            if let Some(id) = id
                .as_ref()
                .filter(|id| !trunks.iter().any(|t| &t.id == *id))
            {
                c.err(
                    format!("call_targets[{i}].dialler.{k}"),
                    format!("no [[trunks]] entry has id {id:?}"),
                );
            }
        }
    }
    Config {
        sip: SipConfig {
            udp,
            tcp,
            tls,
            tls_files,
            tls_ca: raw.sip.tls_ca,
            tcp_idle_timeout: Duration::from_secs(raw.sip.tcp_idle_timeout_secs),
            user_agent: raw.sip.user_agent,
            engine_threads: match raw.sip.engine_threads {
                0 => std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(MAX_ENGINE_THREADS),
                n => n,
            },
            t1: Duration::from_millis(t.t1_ms),
            t2: Duration::from_millis(t.t2_ms),
            t4: Duration::from_millis(t.t4_ms),
        },
        http_listen: http_listen
            .first()
            .copied()
            .unwrap_or(([127, 0, 0, 1], 8080).into()),
        data_dir: PathBuf::from(raw.store.data_dir),
        store,
        acl: AclConfig {
            action: raw.acl.action,
            allow,
            deny,
        },
        flood: FloodConfig {
            max_requests: raw.flood.max_requests,
            window: Duration::from_millis(raw.flood.window_ms),
            action: raw.flood.action,
            retry_after_secs: raw.flood.retry_after_secs,
        },
        egress_allow,
        call_targets,
        organizations: cb.organizations,
        widgets: cb.widgets,
        calls,
        media,
        trunks,
        dns,
        cluster,
    }
}

fn call_targets(c: &mut Check, raw: &[RawCallTarget]) -> Vec<CallTarget> {
    let mut ids = HashSet::new();
    let mut numbers = HashSet::new();
    for (i, t) in raw.iter().enumerate() {
        let key = format!("call_targets[{i}]");
        if t.id.is_empty()
            || !t
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            c.err(format!("{key}.id"), "must be letters, digits, - or _");
        }
        if !ids.insert(t.id.as_str()) {
            c.err(
                format!("{key}.id"),
                format!("duplicate call target id {:?}", t.id),
            );
        }
        if t.numbers.is_empty() {
            c.err(
                format!("{key}.numbers"),
                "a call target must own at least one number",
            );
        }
        for (j, n) in t.numbers.iter().enumerate() {
            if !is_e164(n) {
                c.err(
                    format!("{key}.numbers[{j}]"),
                    format!("not an E.164 number (+ and 2-15 digits): {n:?}"),
                );
            } else if !numbers.insert(n.as_str()) {
                c.err(
                    format!("{key}.numbers[{j}]"),
                    format!("{n} is owned by another call target"),
                );
            }
        }
        if let Some(uri) = &t.bridge_to {
            if let Err(e) = crate::call::route::destination(uri) {
                c.err(format!("{key}.bridge_to"), e);
            }
        }
    }
    raw.iter()
        .enumerate()
        .map(|(i, t)| CallTarget {
            id: t.id.clone(),
            name: t.name.clone(),
            numbers: t.numbers.clone(),
            organization: None,
            callback: CallbackSettings::default(),
            bridge_to: t.bridge_to.clone(),
            srtp: t.srtp.unwrap_or_default(),
            ivr: crate::call::ivr::config::validate(c.0, &format!("call_targets[{i}]"), t),
            dialler: crate::call::dialler::config::validate(
                c.0,
                &format!("call_targets[{i}]"),
                t.dialler.as_ref(),
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[sip]
udp = ["127.0.0.1:5060", "[::1]:5060"]
tcp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8", "::1"]
[egress]
allow = ["127.0.0.0/8"]
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
"#;

    #[test]
    fn a_good_config_loads() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.sip.udp.len(), 2);
        assert_eq!(c.sip.t1, Duration::from_millis(500));
        assert_eq!(c.call_targets[0].numbers, vec!["+15550001000"]);
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let bad = GOOD
            .replace("\"127.0.0.1:5060\", \"[::1]:5060\"", "\"nope\"")
            .replace("\"::1\"", "\"::1\", \"300.1.1.1/8\"")
            .replace("+15550001000", "5550001000")
            .replace("[egress]", "[egress]\nbogus = 1");
        let errs = Config::parse(&bad).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"sip.udp[0]"), "{keys:?}");
        assert!(keys.contains(&"acl.allow[2]"), "{keys:?}");
        assert!(keys.contains(&"call_targets[0].numbers[0]"), "{keys:?}");
        assert!(keys.contains(&"egress.bogus"), "{keys:?}");
    }

    #[test]
    fn the_store_is_sqlite_in_the_data_dir_unless_a_url_says_otherwise() {
        use crate::store::Location;
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.store, Location::Sqlite("data/holdless.sqlite3".into()));
        let dir = format!("{GOOD}[store]\ndata_dir = \"/var/lib/holdless\"\n");
        let c = Config::parse(&dir).unwrap();
        assert_eq!(
            c.store,
            Location::Sqlite("/var/lib/holdless/holdless.sqlite3".into())
        );
        let pg = format!("{GOOD}[store]\nurl = \"postgres://postgres@127.0.0.1:5432/holdless\"\n");
        let c = Config::parse(&pg).unwrap();
        assert!(matches!(c.store, Location::Postgres(_)), "{:?}", c.store);
        let bad = format!("{GOOD}[store]\nurl = \"mysql://db/holdless\"\n");
        let errs = Config::parse(&bad).unwrap_err();
        assert_eq!(errs[0].key, "store.url", "{errs:?}");
        assert!(errs[0].message.contains("postgres://"), "{errs:?}");
    }

    #[test]
    fn engine_threads_default_to_the_cpus_and_are_bounded() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cfg = Config::parse(GOOD).unwrap();
        assert_eq!(cfg.sip.engine_threads, cpus.min(MAX_ENGINE_THREADS));
        let three = GOOD.replace("[sip]", "[sip]\nengine_threads = 3");
        assert_eq!(Config::parse(&three).unwrap().sip.engine_threads, 3);
        let many = GOOD.replace("[sip]", "[sip]\nengine_threads = 65");
        let errs = Config::parse(&many).unwrap_err();
        assert_eq!(errs[0].key, "sip.engine_threads", "{errs:?}");
    }

    #[test]
    fn a_type_error_names_its_key() {
        let bad = GOOD.replace("[acl]", "[acl]\naction = \"maybe\"");
        let errs = Config::parse(&bad).unwrap_err();
        assert_eq!(errs[0].key, "acl.action", "{errs:?}");
        let bad = GOOD.replace("[sip]", "[sip]\ntcp_idle_timeout_secs = \"long\"");
        assert_eq!(
            Config::parse(&bad).unwrap_err()[0].key,
            "sip.tcp_idle_timeout_secs"
        );
    }

    #[test]
    fn srtp_is_set_per_call_target_and_trunk_and_a_bad_value_names_its_key() {
        use crate::media::srtp::SrtpPolicy;
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.call_targets[0].srtp, SrtpPolicy::Optional, "the default");
        let set = format!(
            "{}[[trunks]]\nid = \"carrier\"\nuri = \"sip:127.0.0.1:5080\"\nsrtp = \"off\"\n",
            GOOD.replace("numbers = [", "srtp = \"required\"\nnumbers = [")
        );
        let c = Config::parse(&set).unwrap();
        assert_eq!(c.call_targets[0].srtp, SrtpPolicy::Required);
        assert_eq!(c.trunks[0].srtp, Some(SrtpPolicy::Off));
        let bad = GOOD.replace("numbers = [", "srtp = \"maybe\"\nnumbers = [");
        let errs = Config::parse(&bad).unwrap_err();
        assert_eq!(errs[0].key, "call_targets[0].srtp", "{errs:?}");
        assert!(errs[0].message.contains("required"), "{errs:?}");
    }

    #[test]
    fn a_type_error_hides_no_other_error() {
        let bad = format!(
            "nonsense = 1\n{}",
            GOOD.replace("[acl]", "[acl]\naction = \"maybe\"")
                .replace("[egress]", "[egress]\nbogus = 1")
                .replace("\"[::1]:5060\"", "\"nope\"")
                .replace("+15550001000", "5550001000")
        ) + "[flood]\nmax_requests = \"many\"\n[sip.timers]\nt9_ms = 1\n";
        let errs = Config::parse(&bad).unwrap_err();
        let mut keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        keys.sort_unstable();
        // acl and flood could not be read: nothing said about their (default) values.
        assert_eq!(
            keys,
            [
                "acl.action",
                "call_targets[0].numbers[0]",
                "egress.bogus",
                "flood.max_requests",
                "nonsense",
                "sip.timers.t9_ms",
                "sip.udp[1]",
            ],
            "{errs:?}"
        );
        let action = errs.iter().find(|e| e.key == "acl.action").unwrap();
        assert!(action.message.contains("maybe"), "{action:?}");
    }

    #[test]
    fn a_section_of_the_wrong_type_is_named() {
        let errs = Config::parse(
            &GOOD
                .replace("[egress]\nallow = [\"127.0.0.0/8\"]", "")
                .replace("[sip]", "egress = 5\n[sip]"),
        )
        .unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "egress");
    }

    #[test]
    fn a_type_error_in_a_callback_section_silences_their_cross_checks() {
        let bad = GOOD.replace("name = \"Billing\"", "name = 7");
        let errs = Config::parse(&bad).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["call_targets[0].name"], "{errs:?}");
    }

    #[test]
    fn duplicate_numbers_are_refused() {
        let bad = format!("{GOOD}\n[[call_targets]]\nid = \"sales\"\nname = \"S\"\nnumbers = [\"+15550001000\"]\n");
        let errs = Config::parse(&bad).unwrap_err();
        assert_eq!(errs[0].key, "call_targets[1].numbers[0]");
    }

    #[test]
    fn e164() {
        assert!(is_e164("+15550001000"));
        assert!(!is_e164("15550001000"));
        assert!(!is_e164("+0555"));
        assert!(!is_e164("+1234567890123456"));
    }
}
