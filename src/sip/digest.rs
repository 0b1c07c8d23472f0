//! SIP digest authentication, client side (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760):
//! read the challenges of a 401/407, answer one per realm, and keep per-peer state so later
//! requests (BYE, re-INVITE) can carry credentials up front.
//!
//! Sans-IO: the client nonce (`cnonce`) is an argument; nothing here reads a clock or an RNG.
//! Which header goes with which status:
//!
//! | response | challenge header     | answer header         |
//! |----------|----------------------|-----------------------|
//! | 401      | `WWW-Authenticate`   | `Authorization`       |
//! | 407      | `Proxy-Authenticate` | `Proxy-Authorization` |
//!
//! A forking proxy may put both kinds in one response (RFC 3261 §22.3), so the headers are
//! read by name, not by status code; [`AuthKind`] carries the pairing.
//!
//! * One header value may hold several challenges (`Digest ..., Digest ...`, the HTTP list
//!   form); SIP servers usually send one header per challenge. Both are read.
//! * Among several challenges for one realm (RFC 8760: one per algorithm) the strongest hash
//!   wins — SHA-512-256, then SHA-256, then MD5 — and between equals the topmost; challenges
//!   holdless cannot answer (another scheme, an unknown algorithm or qop) are skipped.
//! * `qop=auth` is preferred when both `auth` and `auth-int` are offered; no `qop` gives the
//!   RFC 2069 answer (no cnonce, no nc).
//! * `userhash`, `domain` and `charset` are ignored: the username is sent as it is.

use std::fmt::{self, Write as _};

use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512_256};

use super::message::Message;

/// At most this many realms are remembered per peer. A trunk uses one (two behind an
/// authenticating proxy); more means a misbehaving peer, and the oldest realm is forgotten.
pub const MAX_REALMS: usize = 4;

/// What went wrong reading a challenge or answering it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The challenge uses another scheme (Basic, Bearer, ...): holdless only answers Digest.
    #[error("authentication scheme {0:?} is not Digest")]
    NotDigest(String),
    /// A parameter every Digest challenge must carry (`realm`, `nonce`) is absent.
    #[error("Digest challenge without {0}")]
    MissingParam(&'static str),
    /// An `algorithm` holdless does not implement.
    #[error(
        "Digest algorithm {0:?} is not supported \
         (MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256, SHA-512-256-sess are)"
    )]
    UnknownAlgorithm(String),
    /// `qop` is present but offers neither `auth` nor `auth-int`.
    #[error("Digest qop {0:?} offers neither auth nor auth-int")]
    UnsupportedQop(String),
    /// A `-sess` algorithm without `qop`: the session hash needs a cnonce the server would
    /// never see, so no answer could be checked.
    #[error("Digest algorithm {0} needs qop (a cnonce), and the challenge offers none")]
    SessionWithoutQop(Algorithm),
    /// The header value is not challenge syntax (an unterminated quote, a missing comma).
    #[error("malformed Digest challenge: {0}")]
    Malformed(&'static str),
    /// Nothing in the response can be answered with these credentials; says why.
    #[error("no Digest challenge holdless can answer: {0}")]
    NoUsableChallenge(String),
    /// The server challenged again with the nonce just answered and without `stale=true`:
    /// the username or password is wrong for this realm.
    #[error("credentials for realm {0:?} were rejected")]
    Rejected(String),
    /// Credentials were asked for on a response; they go on requests only.
    #[error("digest credentials go on a request, not a response")]
    NotARequest,
}

/// A digest hash algorithm, as named in the `algorithm` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617; the default when `algorithm` is absent).
    Md5,
    /// `MD5-sess`: HA1 also hashes the nonce and cnonce.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (RFC 7616, RFC 8760).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Reads an `algorithm` token, case-insensitively.
    pub fn parse(token: &str) -> Result<Algorithm, DigestError> {
        const ALL: [Algorithm; 6] = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ];
        ALL.into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token))
            .ok_or_else(|| DigestError::UnknownAlgorithm(token.to_owned()))
    }

    /// The token as RFC 7616 spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Whether this is a `-sess` variant (HA1 hashed again with nonce and cnonce).
    pub const fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Preference among algorithms: higher is stronger.
    const fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 3,
        }
    }

    /// `H(data)` as lowercase hex.
    fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(Md5::digest(data).as_slice()),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(Sha256::digest(data).as_slice()),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => {
                hex(Sha512_256::digest(data).as_slice())
            }
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quality of protection holdless can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: method and URI are protected.
    Auth,
    /// `auth-int`: the body is hashed in as well.
    AuthInt,
}

impl Qop {
    /// The token as written on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// Which pair of headers a challenge came in, and so which header answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthKind {
    /// From the UAS or registrar (401): `WWW-Authenticate` answered by `Authorization`.
    Www,
    /// From a proxy (407): `Proxy-Authenticate` answered by `Proxy-Authorization`.
    Proxy,
}

impl AuthKind {
    /// The kind a status code asks for: 401 → `Www`, 407 → `Proxy`, anything else `None`.
    pub const fn from_status(code: u16) -> Option<AuthKind> {
        match code {
            401 => Some(AuthKind::Www),
            407 => Some(AuthKind::Proxy),
            _ => None,
        }
    }

    /// The header a challenge of this kind arrives in.
    pub const fn challenge_header(self) -> &'static str {
        match self {
            AuthKind::Www => "WWW-Authenticate",
            AuthKind::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header that answers a challenge of this kind.
    pub const fn credentials_header(self) -> &'static str {
        match self {
            AuthKind::Www => "Authorization",
            AuthKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// One Digest challenge, its parameters unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space; credentials are per realm.
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// Opaque server data, echoed unchanged in the answer.
    pub opaque: Option<String>,
    /// The `algorithm` parameter; `None` when absent, which means MD5 (and is not echoed).
    pub algorithm: Option<Algorithm>,
    /// The offered qop values holdless understands, in order; empty means no `qop` (RFC 2069).
    pub qop: Vec<Qop>,
    /// `stale=true`: the nonce expired but the last credentials were good.
    pub stale: bool,
}

impl Challenge {
    /// Parses one challenge, e.g. `Digest realm="a", nonce="b", qop="auth"`.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let mut list = parse_list(value)?.into_iter();
        match (list.next(), list.next()) {
            (Some(one), None) => one,
            (None, _) => Err(DigestError::Malformed("empty header value")),
            (Some(_), Some(_)) => Err(DigestError::Malformed("several challenges in one value")),
        }
    }

    /// The algorithm in force: the one given, or MD5.
    pub fn effective_algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }

    /// The qop the answer uses: `auth` if offered, else `auth-int`, else none (RFC 2069).
    pub fn preferred_qop(&self) -> Option<Qop> {
        if self.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else {
            self.qop.first().copied()
        }
    }

    /// Whether holdless can answer this challenge at all (a `-sess` one needs a qop).
    pub fn check(&self) -> Result<(), DigestError> {
        let alg = self.effective_algorithm();
        if alg.is_session() && self.qop.is_empty() {
            return Err(DigestError::SessionWithoutQop(alg));
        }
        Ok(())
    }

    /// Builds a challenge from its scheme and `name=value` parameters.
    fn from_params(scheme: &str, params: &[(&str, String)]) -> Result<Challenge, DigestError> {
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::NotDigest(scheme.to_owned()));
        }
        // RFC 7616 §3.3: a parameter appears at most once; if one repeats, the first counts.
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let realm = get("realm").ok_or(DigestError::MissingParam("realm"))?;
        let nonce = get("nonce").ok_or(DigestError::MissingParam("nonce"))?;
        Ok(Challenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: get("opaque").map(str::to_owned),
            algorithm: get("algorithm").map(Algorithm::parse).transpose()?,
            qop: get("qop").map(parse_qop).transpose()?.unwrap_or_default(),
            stale: get("stale").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

/// The known values of a `qop` list (`"auth,auth-int"`); unknown ones are skipped.
fn parse_qop(list: &str) -> Result<Vec<Qop>, DigestError> {
    let mut out = Vec::new();
    for token in list.split(',').map(str::trim) {
        let qop = if token.eq_ignore_ascii_case("auth") {
            Qop::Auth
        } else if token.eq_ignore_ascii_case("auth-int") {
            Qop::AuthInt
        } else {
            continue;
        };
        if !out.contains(&qop) {
            out.push(qop);
        }
    }
    if out.is_empty() {
        return Err(DigestError::UnsupportedQop(list.to_owned()));
    }
    Ok(out)
}

/// Parses every challenge in one header value (`Digest ..., Basic ..., Digest ...`).
///
/// A syntax error fails the whole value (where one challenge ends is then unknown); a
/// challenge that parses but cannot be used (another scheme, no nonce) is an `Err` entry.
pub fn parse_list(value: &str) -> Result<Vec<Result<Challenge, DigestError>>, DigestError> {
    let mut out = Vec::new();
    let mut current: Option<(&str, Vec<(&str, String)>)> = None;
    for item in lex(value)? {
        match item {
            Item::Scheme(scheme) => {
                if let Some((s, params)) = current.replace((scheme, Vec::new())) {
                    out.push(Challenge::from_params(s, &params));
                }
            }
            Item::Param(name, v) => match current.as_mut() {
                Some((_, params)) => params.push((name, v)),
                None => return Err(DigestError::Malformed("parameters before the scheme")),
            },
        }
    }
    if let Some((s, params)) = current {
        out.push(Challenge::from_params(s, &params));
    }
    Ok(out)
}

/// One element of a challenge list: a scheme that starts a challenge, or a parameter.
enum Item<'a> {
    /// `Digest`, `Basic`, ...
    Scheme(&'a str),
    /// `name=value`, the value unquoted.
    Param(&'a str, String),
}

/// Whitespace between elements (folding was undone by the framer).
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Index of the first byte at or after `i` that is not whitespace.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Splits a challenge list into schemes and parameters. A token followed by `=` is a
/// parameter name; any other token starts a new challenge.
fn lex(value: &str) -> Result<Vec<Item<'_>>, DigestError> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && (is_ws(b[i]) || b[i] == b',') {
            i += 1;
        }
        if i == b.len() {
            return Ok(out);
        }
        let start = i;
        while i < b.len() && !is_ws(b[i]) && !matches!(b[i], b',' | b'=' | b'"') {
            i += 1;
        }
        if i == start {
            return Err(DigestError::Malformed(
                "expected a scheme or a parameter name",
            ));
        }
        let name = &value[start..i];
        let eq = skip_ws(b, i);
        if eq == b.len() || b[eq] != b'=' {
            out.push(Item::Scheme(name));
            i = eq;
            continue;
        }
        i = skip_ws(b, eq + 1);
        let v = if b.get(i) == Some(&b'"') {
            let (v, end) = quoted(value, i + 1)?;
            i = end;
            v
        } else {
            let vstart = i;
            while i < b.len() && !is_ws(b[i]) && b[i] != b',' {
                i += 1;
            }
            value[vstart..i].to_owned()
        };
        out.push(Item::Param(name, v));
        i = skip_ws(b, i);
        if i < b.len() && b[i] != b',' {
            return Err(DigestError::Malformed(
                "parameters must be separated by commas",
            ));
        }
    }
}

/// The quoted string whose content starts at byte `start` (just after the opening quote),
/// unescaped, and the index just after its closing quote.
fn quoted(value: &str, start: usize) -> Result<(String, usize), DigestError> {
    let mut out = String::new();
    let mut escaped = false;
    for (off, c) in value[start..].char_indices() {
        match c {
            _ if escaped => {
                out.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => return Ok((out, start + off + 1)),
            _ => out.push(c),
        }
    }
    Err(DigestError::Malformed("unterminated quoted string"))
}

/// Every challenge in a response's `WWW-Authenticate` and `Proxy-Authenticate` headers, in
/// header order, each with the kind of header it came in.
pub fn challenges(response: &Message) -> Vec<(AuthKind, Result<Challenge, DigestError>)> {
    let mut out = Vec::new();
    for h in &response.headers {
        let kind = [AuthKind::Www, AuthKind::Proxy]
            .into_iter()
            .find(|k| h.name.eq_ignore_ascii_case(k.challenge_header()));
        let Some(kind) = kind else { continue };
        match parse_list(&h.value) {
            Ok(list) => out.extend(list.into_iter().map(|c| (kind, c))),
            Err(e) => out.push((kind, Err(e))),
        }
    }
    out
}

/// Picks the challenge to answer among several for one realm (RFC 7616 §3.7, RFC 8760):
/// only answerable ones whose realm the credentials accept; the strongest hash wins, and
/// between equals the first (topmost) one.
pub fn choose<'c>(
    candidates: impl IntoIterator<Item = &'c Challenge>,
    creds: &Credentials,
) -> Option<&'c Challenge> {
    let mut best: Option<&Challenge> = None;
    for c in candidates {
        if !creds.accepts(&c.realm) || c.check().is_err() {
            continue;
        }
        let strength = c.effective_algorithm().strength();
        if best.is_none_or(|b| strength > b.effective_algorithm().strength()) {
            best = Some(c);
        }
    }
    best
}

/// A username and password, optionally restricted to one realm. `Debug` and `Display`
/// never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username sent in the answer.
    pub username: String,
    /// Kept private so that only [`authorization`] reads it.
    password: String,
    /// When set, only challenges for exactly this realm are answered.
    pub realm: Option<String>,
}

impl Credentials {
    /// Credentials for any realm.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
            realm: None,
        }
    }

    /// The same credentials, answering only challenges for `realm`.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Credentials {
        self.realm = Some(realm.into());
        self
    }

    /// Whether these credentials may answer a challenge for `realm`.
    pub fn accepts(&self, realm: &str) -> bool {
        self.realm.as_deref().is_none_or(|r| r == realm)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realm", &self.realm)
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.username)?;
        match &self.realm {
            Some(realm) => write!(f, " (realm {realm})"),
            None => Ok(()),
        }
    }
}

/// The parts of a request the answer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRequest<'a> {
    /// The method token, e.g. `INVITE`.
    pub method: &'a str,
    /// The Request-URI exactly as it appears on the request line.
    pub uri: &'a str,
    /// The body (hashed only for `qop=auth-int`).
    pub body: &'a [u8],
}

/// The `Authorization` / `Proxy-Authorization` value answering `challenge`.
///
/// `cnonce` is the caller's fresh client nonce (unused without qop) and `nc` the count of
/// answers sent with this nonce, this one included (1 for the first), sent as 8 hex digits.
pub fn authorization(
    challenge: &Challenge,
    creds: &Credentials,
    request: &DigestRequest<'_>,
    cnonce: &str,
    nc: u32,
) -> Result<String, DigestError> {
    challenge.check()?;
    let alg = challenge.effective_algorithm();
    let qop = challenge.preferred_qop();
    let nonce = &challenge.nonce;
    let secret = format!("{}:{}:{}", creds.username, challenge.realm, creds.password);
    let mut ha1 = alg.hash(secret.as_bytes());
    if alg.is_session() {
        ha1 = alg.hash(format!("{ha1}:{nonce}:{cnonce}").as_bytes());
    }
    let a2 = match qop {
        Some(Qop::AuthInt) => {
            let body = alg.hash(request.body);
            format!("{}:{}:{body}", request.method, request.uri)
        }
        _ => format!("{}:{}", request.method, request.uri),
    };
    let ha2 = alg.hash(a2.as_bytes());
    let nc = format!("{nc:08x}");
    let response = match qop {
        Some(q) => format!("{ha1}:{nonce}:{nc}:{cnonce}:{}:{ha2}", q.as_str()),
        None => format!("{ha1}:{nonce}:{ha2}"),
    };
    let response = alg.hash(response.as_bytes());

    // RFC 7616 §3.4: username, realm, nonce, uri, response, cnonce, opaque are quoted;
    // algorithm, qop and nc are not.
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response={}",
        quote(&creds.username),
        quote(&challenge.realm),
        quote(nonce),
        quote(request.uri),
        quote(&response),
    );
    if let Some(a) = challenge.algorithm {
        let _ = write!(out, ", algorithm={a}");
    }
    if let Some(q) = qop {
        let _ = write!(
            out,
            ", cnonce={}, qop={}, nc={nc}",
            quote(cnonce),
            q.as_str()
        );
    }
    if let Some(opaque) = &challenge.opaque {
        let _ = write!(out, ", opaque={}", quote(opaque));
    }
    Ok(out)
}

/// `s` as a quoted string, `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Lowercase hex of some bytes.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// The challenge remembered for one realm and how many answers used its nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Remembered {
    /// Which header pair the challenge came in.
    kind: AuthKind,
    /// The chosen challenge for this realm.
    challenge: Challenge,
    /// Answers sent with `challenge.nonce` so far (the last `nc` sent).
    nc: u32,
}

/// Per-peer digest state: the last challenge per realm and its nonce count, so that later
/// requests (in-dialog BYE, re-INVITE) carry credentials up front. Plain data; no IO.
///
/// Feed it every 401/407 with [`DigestSession::on_challenge`]; put credentials on each
/// outgoing request with [`DigestSession::apply`] (or [`DigestSession::authorize`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestSession {
    /// At most [`MAX_REALMS`] entries, oldest first.
    entries: Vec<Remembered>,
}

impl DigestSession {
    /// A session that has seen no challenge yet.
    pub fn new() -> DigestSession {
        DigestSession::default()
    }

    /// Reads a 401/407 and remembers, per realm, the challenge to answer (see [`choose`]).
    ///
    /// Errors: [`DigestError::NoUsableChallenge`] when nothing in it can be answered with
    /// `creds`; [`DigestError::Rejected`] when a realm challenges again with the nonce
    /// already answered and without `stale=true` (wrong password: do not retry).
    pub fn on_challenge(
        &mut self,
        response: &Message,
        creds: &Credentials,
    ) -> Result<(), DigestError> {
        let all = challenges(response);
        let mut reasons = Vec::new();
        let mut realms: Vec<(AuthKind, &str)> = Vec::new();
        for (kind, c) in &all {
            match c {
                Ok(c) if !creds.accepts(&c.realm) => {
                    reasons.push(format!("realm {:?} is not the configured one", c.realm));
                }
                Ok(c) => match c.check() {
                    Ok(()) if !realms.contains(&(*kind, c.realm.as_str())) => {
                        realms.push((*kind, &c.realm));
                    }
                    Ok(()) => {}
                    Err(e) => reasons.push(e.to_string()),
                },
                Err(e) => reasons.push(e.to_string()),
            }
        }
        if realms.is_empty() {
            if reasons.is_empty() {
                reasons.push("no WWW-Authenticate or Proxy-Authenticate header".into());
            }
            return Err(DigestError::NoUsableChallenge(reasons.join("; ")));
        }
        for (kind, realm) in realms {
            let same = all.iter().filter_map(|(k, c)| match c {
                Ok(c) if *k == kind && c.realm == realm => Some(c),
                _ => None,
            });
            if let Some(best) = choose(same, creds) {
                self.remember(kind, best.clone())?;
            }
        }
        Ok(())
    }

    /// Remembers one chosen challenge. A new nonce (or `stale=true`) restarts the nonce
    /// count; the nonce already answered, not stale, is [`DigestError::Rejected`]; one that
    /// cannot be answered (see [`Challenge::check`]) is refused and nothing changes.
    pub fn remember(&mut self, kind: AuthKind, challenge: Challenge) -> Result<(), DigestError> {
        challenge.check()?;
        let slot = self
            .entries
            .iter_mut()
            .find(|e| e.kind == kind && e.challenge.realm == challenge.realm);
        match slot {
            Some(e) => {
                let same_nonce = e.challenge.nonce == challenge.nonce;
                if same_nonce && !challenge.stale && e.nc > 0 {
                    return Err(DigestError::Rejected(challenge.realm));
                }
                if !same_nonce || challenge.stale {
                    e.nc = 0;
                }
                e.challenge = challenge;
            }
            None => {
                if self.entries.len() >= MAX_REALMS {
                    self.entries.remove(0);
                }
                self.entries.push(Remembered {
                    kind,
                    challenge,
                    nc: 0,
                });
            }
        }
        Ok(())
    }

    /// One `(header name, value)` per remembered realm the credentials accept, each with
    /// its nonce count moved up by one. Empty when no challenge was seen yet.
    pub fn authorize(
        &mut self,
        creds: &Credentials,
        request: &DigestRequest<'_>,
        cnonce: &str,
    ) -> Result<Vec<(&'static str, String)>, DigestError> {
        let mut out = Vec::new();
        for e in &mut self.entries {
            if !creds.accepts(&e.challenge.realm) {
                continue;
            }
            // Saturates rather than wraps: a repeated nc is refused by the server with a
            // stale challenge, which restarts the count.
            e.nc = e.nc.saturating_add(1);
            let value = authorization(&e.challenge, creds, request, cnonce, e.nc)?;
            out.push((e.kind.credentials_header(), value));
        }
        Ok(out)
    }

    /// Replaces any `Authorization` / `Proxy-Authorization` on `request` with fresh answers
    /// for its method, Request-URI and body (see [`DigestSession::authorize`]).
    pub fn apply(
        &mut self,
        request: &mut Message,
        creds: &Credentials,
        cnonce: &str,
    ) -> Result<(), DigestError> {
        let (Some(method), Some(uri)) = (request.method(), request.request_uri()) else {
            return Err(DigestError::NotARequest);
        };
        let parts = DigestRequest {
            method: method.as_str(),
            uri,
            body: &request.body,
        };
        let headers = self.authorize(creds, &parts, cnonce)?;
        request.headers.retain(|h| {
            !h.name
                .eq_ignore_ascii_case(AuthKind::Www.credentials_header())
                && !h
                    .name
                    .eq_ignore_ascii_case(AuthKind::Proxy.credentials_header())
        });
        for (name, value) in headers {
            request.push_other(name, value);
        }
        Ok(())
    }

    /// The last nonce count sent for a realm (0 when its challenge is not answered yet).
    pub fn nonce_count(&self, kind: AuthKind, realm: &str) -> Option<u32> {
        self.entries
            .iter()
            .find(|e| e.kind == kind && e.challenge.realm == realm)
            .map(|e| e.nc)
    }

    /// Whether no challenge is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every challenge (e.g. after the credentials changed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Method;
    use bytes::Bytes;

    /// RFC 2617 §3.5: the challenge of the worked example.
    const RFC2617: &str = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
    /// RFC 7616 §3.9.1: the nonce and cnonce of the worked example.
    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    /// RFC 7616 §3.9.1: the same challenge for each algorithm.
    fn rfc7616(algorithm: &str) -> Challenge {
        Challenge::parse(&format!(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, nonce="{RFC7616_NONCE}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
        ))
        .unwrap()
    }

    fn get_dir_index() -> DigestRequest<'static> {
        DigestRequest {
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        }
    }

    /// A parameter of an answer, unquoted.
    fn param(answer: &str, name: &str) -> Option<String> {
        lex(answer).unwrap().into_iter().find_map(|i| match i {
            Item::Param(n, v) if n == name => Some(v),
            _ => None,
        })
    }

    fn challenged(code: u16, headers: &[(&str, &str)]) -> Message {
        let mut m = Message::response(code, "Unauthorized");
        for (name, value) in headers {
            m.push_other(*name, *value);
        }
        m
    }

    /// How many header lines carry `name` (any case).
    fn count(m: &Message, name: &str) -> usize {
        m.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    }

    fn invite() -> Message {
        let mut m = Message::request(Method::Invite, "sip:+15551234567@127.0.0.1");
        m.body = Bytes::from_static(b"v=0\r\n");
        m
    }

    #[test]
    fn rfc2617_example_gives_its_response_quoted_as_rfc7616_says() {
        let c = Challenge::parse(RFC2617).unwrap();
        let creds = Credentials::new("Mufasa", "Circle Of Life");
        let answer = authorization(&c, &creds, &get_dir_index(), "0a4f113b", 1).unwrap();
        assert_eq!(
            answer,
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", cnonce="0a4f113b", qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41""#
        );
    }

    #[test]
    fn rfc7616_md5_example() {
        let creds = Credentials::new("Mufasa", "Circle of Life");
        let answer =
            authorization(&rfc7616("MD5"), &creds, &get_dir_index(), RFC7616_CNONCE, 1).unwrap();
        assert_eq!(
            param(&answer, "response").unwrap(),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert!(answer.contains(", algorithm=MD5,"), "{answer}");
        assert!(answer.contains(r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#));
    }

    #[test]
    fn rfc7616_sha256_example() {
        let creds = Credentials::new("Mufasa", "Circle of Life");
        let answer = authorization(
            &rfc7616("SHA-256"),
            &creds,
            &get_dir_index(),
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_eq!(
            param(&answer, "response").unwrap(),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(answer.contains(", algorithm=SHA-256,"), "{answer}");
        assert!(answer.contains(", qop=auth, nc=00000001"), "{answer}");
        assert!(answer.contains(&format!(r#"cnonce="{RFC7616_CNONCE}""#)));
    }

    #[test]
    fn sha512_256_answers_the_rfc7616_inputs() {
        // Expected value computed with Python's hashlib (sha512_256), which also reproduces
        // the RFC's MD5 and SHA-256 answers above; the hash itself is checked on FIPS 180-4's
        // "abc" vector.
        assert_eq!(
            Algorithm::Sha512_256.hash(b"abc"),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
        let creds = Credentials::new("Mufasa", "Circle of Life");
        let c = rfc7616("SHA-512-256");
        let answer = authorization(&c, &creds, &get_dir_index(), RFC7616_CNONCE, 1).unwrap();
        assert_eq!(
            param(&answer, "response").unwrap(),
            "430d05014cecc49cab6fbe03176d41a1da86cbfe24a16580e22aaad928d960d0"
        );
    }

    #[test]
    fn rfc2069_form_when_the_challenge_has_no_qop() {
        // RFC 2069 §2.4 with erratum 749 (the published response was wrong).
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let creds = Credentials::new("Mufasa", "CircleOfLife");
        let answer = authorization(&c, &creds, &get_dir_index(), "unused", 1).unwrap();
        assert_eq!(
            answer,
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="1949323746fe6a43ef61f9606e7febea", opaque="5ccc069c403ebaf9f0171e9517f40e41""#
        );
    }

    #[test]
    fn md5_sess_hashes_nonce_and_cnonce_into_ha1() {
        // RFC 2617 example inputs with algorithm=MD5-sess; expected from Python's hashlib.
        let c =
            Challenge::parse(&RFC2617.replace("Digest ", "Digest algorithm=MD5-sess, ")).unwrap();
        let creds = Credentials::new("Mufasa", "Circle Of Life");
        let answer = authorization(&c, &creds, &get_dir_index(), "0a4f113b", 1).unwrap();
        assert_eq!(
            param(&answer, "response").unwrap(),
            "8e3825c57e897f5a0dec6c2d4e5059d0"
        );
        assert!(answer.contains(", algorithm=MD5-sess,"), "{answer}");
    }

    #[test]
    fn sha256_sess_auth_int_hashes_the_body() {
        // Only auth-int offered; expected from Python's hashlib.
        let c = Challenge::parse(
            r#"Digest realm="sip.example.com", nonce="abc123", algorithm=SHA-256-sess, qop="auth-int""#,
        )
        .unwrap();
        let creds = Credentials::new("alice", "s3cret");
        let request = DigestRequest {
            method: "INVITE",
            uri: "sip:+15551234567@sip.example.com",
            body: b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n",
        };
        let answer = authorization(&c, &creds, &request, "deadbeef", 2).unwrap();
        assert_eq!(
            param(&answer, "response").unwrap(),
            "5d8ddc02b849726ad2a6b996e0a545a8fcbee63dde5381d425b2638cfb83d015"
        );
        assert!(answer.contains(", qop=auth-int, nc=00000002"), "{answer}");
    }

    #[test]
    fn auth_is_preferred_over_auth_int_in_any_order() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-int, auth""#).unwrap();
        assert_eq!(c.qop, vec![Qop::AuthInt, Qop::Auth]);
        assert_eq!(c.preferred_qop(), Some(Qop::Auth));
        let answer =
            authorization(&c, &Credentials::new("u", "p"), &get_dir_index(), "c", 1).unwrap();
        assert!(answer.contains(", qop=auth, "), "{answer}");
    }

    #[test]
    fn a_sess_algorithm_without_qop_cannot_be_answered() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=MD5-sess"#).unwrap();
        let creds = Credentials::new("u", "p");
        assert_eq!(
            authorization(&c, &creds, &get_dir_index(), "c", 1),
            Err(DigestError::SessionWithoutQop(Algorithm::Md5Sess))
        );
        assert_eq!(choose([&c], &creds), None);
        let mut s = DigestSession::new();
        assert_eq!(
            s.remember(AuthKind::Www, c),
            Err(DigestError::SessionWithoutQop(Algorithm::Md5Sess))
        );
        assert!(s.is_empty());
    }

    #[test]
    fn quoted_strings_keep_commas_and_drop_escapes() {
        let c =
            Challenge::parse(r#"Digest realm="a\"b, c=d", nonce="n\\1,2", opaque="", qop="auth""#)
                .unwrap();
        assert_eq!(c.realm, r#"a"b, c=d"#);
        assert_eq!(c.nonce, r"n\1,2");
        assert_eq!(c.opaque.as_deref(), Some(""));
        // Escaped again on the way out.
        let answer =
            authorization(&c, &Credentials::new("u", "p"), &get_dir_index(), "c", 1).unwrap();
        assert!(answer.contains(r#"realm="a\"b, c=d""#), "{answer}");
        assert!(answer.contains(r#"nonce="n\\1,2""#), "{answer}");
    }

    #[test]
    fn names_are_case_insensitive_and_whitespace_is_tolerated() {
        let c = Challenge::parse(
            "  dIgEsT   REALM = \"r\" ,NONCE=abc ,\t Algorithm=sha-256,QOP=auth , Stale=TRUE , domain=\"sip:a sip:b\", userhash=true  ",
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge {
                realm: "r".into(),
                nonce: "abc".into(),
                opaque: None,
                algorithm: Some(Algorithm::Sha256),
                qop: vec![Qop::Auth],
                stale: true,
            }
        );
        let plain = Challenge::parse(r#"Digest realm="r", nonce="n", stale=false"#).unwrap();
        assert!(!plain.stale);
        assert_eq!(plain.algorithm, None);
        assert_eq!(plain.effective_algorithm(), Algorithm::Md5);
        assert!(plain.qop.is_empty());
    }

    #[test]
    fn missing_realm_or_nonce_is_named() {
        assert_eq!(
            Challenge::parse(r#"Digest nonce="n""#),
            Err(DigestError::MissingParam("realm"))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", qop="auth""#),
            Err(DigestError::MissingParam("nonce"))
        );
        assert_eq!(
            Challenge::parse("Digest"),
            Err(DigestError::MissingParam("realm"))
        );
    }

    #[test]
    fn other_schemes_are_refused_by_name() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="r""#),
            Err(DigestError::NotDigest("Basic".into()))
        );
        assert_eq!(
            Challenge::parse("Negotiate"),
            Err(DigestError::NotDigest("Negotiate".into()))
        );
    }

    #[test]
    fn unknown_algorithm_and_qop_are_named() {
        let err =
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA3-256"#).unwrap_err();
        assert_eq!(err, DigestError::UnknownAlgorithm("SHA3-256".into()));
        assert!(err.to_string().contains("\"SHA3-256\""), "{err}");
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-conf""#),
            Err(DigestError::UnsupportedQop("auth-conf".into()))
        );
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        for bad in [
            r#"Digest realm="r, nonce="n"#,
            r#"Digest realm="r" nonce="n""#,
            r#"realm="r", nonce="n""#,
            r#"Digest ="r""#,
            r#"Digest realm="r", "n""#,
            "",
            "   ,  ",
            "Digest realm=\"\u{e9}\\",
        ] {
            assert!(
                matches!(Challenge::parse(bad), Err(DigestError::Malformed(_))),
                "{bad:?} gave {:?}",
                Challenge::parse(bad)
            );
        }
        // Non-ASCII inside and outside quotes is kept, never sliced mid-character.
        let c = Challenge::parse("Digest realm=\"r\u{e9}\", nonce=n\u{e9}").unwrap();
        assert_eq!((c.realm.as_str(), c.nonce.as_str()), ("r\u{e9}", "n\u{e9}"));
    }

    #[test]
    fn one_value_may_hold_several_challenges() {
        let list = parse_list(
            r#"Digest realm="a", nonce="1", algorithm=MD5, Basic realm="b", Digest realm="a", nonce="2", algorithm=SHA-256"#,
        )
        .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].as_ref().unwrap().nonce, "1");
        assert_eq!(list[1], Err(DigestError::NotDigest("Basic".into())));
        assert_eq!(list[2].as_ref().unwrap().algorithm, Some(Algorithm::Sha256));
        assert!(matches!(
            Challenge::parse(r#"Digest realm="a", nonce="1", Digest realm="b", nonce="2""#),
            Err(DigestError::Malformed(_))
        ));
    }

    #[test]
    fn choice_prefers_sha256_over_md5_and_skips_what_it_cannot_answer() {
        let response = challenged(
            401,
            &[
                (
                    "WWW-Authenticate",
                    r#"Digest realm="r", nonce="x", algorithm=SHA3-256"#,
                ),
                (
                    "www-authenticate",
                    r#"Digest realm="r", nonce="m", algorithm=MD5, qop="auth""#,
                ),
                (
                    "WWW-Authenticate",
                    r#"Digest realm="r", nonce="s", algorithm=SHA-256, qop="auth""#,
                ),
                ("WWW-Authenticate", r#"Basic realm="r""#),
            ],
        );
        let all = challenges(&response);
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|(k, _)| *k == AuthKind::Www));
        let ok: Vec<Challenge> = all.into_iter().filter_map(|(_, c)| c.ok()).collect();
        let creds = Credentials::new("u", "p");
        assert_eq!(choose(&ok, &creds).unwrap().nonce, "s");
        // Order does not matter; the strength does.
        let reversed: Vec<Challenge> = ok.iter().rev().cloned().collect();
        assert_eq!(choose(&reversed, &creds).unwrap().nonce, "s");
        // And the session answers with the SHA-256 one.
        let mut s = DigestSession::new();
        s.on_challenge(&response, &creds).unwrap();
        let mut inv = invite();
        s.apply(&mut inv, &creds, "c").unwrap();
        let auth = inv.get_other("Authorization").unwrap();
        assert_eq!(param(auth, "nonce").as_deref(), Some("s"));
        assert_eq!(param(auth, "algorithm").as_deref(), Some("SHA-256"));
    }

    #[test]
    fn choice_keeps_the_topmost_between_equals_and_honours_the_realm() {
        let a = Challenge::parse(r#"Digest realm="a", nonce="1", algorithm=SHA-256"#).unwrap();
        let b = Challenge::parse(r#"Digest realm="b", nonce="2", algorithm=SHA-256"#).unwrap();
        let c = Challenge::parse(r#"Digest realm="b", nonce="3", algorithm=MD5"#).unwrap();
        let any = Credentials::new("u", "p");
        assert_eq!(choose([&a, &b, &c], &any), Some(&a));
        let only_b = Credentials::new("u", "p").with_realm("b");
        assert_eq!(choose([&a, &c, &b], &only_b), Some(&b));
        let only_z = Credentials::new("u", "p").with_realm("z");
        assert_eq!(choose([&a, &b, &c], &only_z), None);
    }

    #[test]
    fn nothing_usable_says_why() {
        let mut s = DigestSession::new();
        let creds = Credentials::new("u", "p").with_realm("trunk");
        let response = challenged(
            401,
            &[
                ("WWW-Authenticate", r#"Digest realm="other", nonce="n""#),
                (
                    "WWW-Authenticate",
                    r#"Digest realm="trunk", nonce="n", algorithm=SHA3"#,
                ),
            ],
        );
        let Err(DigestError::NoUsableChallenge(why)) = s.on_challenge(&response, &creds) else {
            panic!("expected NoUsableChallenge");
        };
        assert!(why.contains("\"other\"") && why.contains("SHA3"), "{why}");
        let bare = challenged(401, &[]);
        assert!(matches!(
            s.on_challenge(&bare, &creds),
            Err(DigestError::NoUsableChallenge(_))
        ));
        assert!(s.is_empty());
    }

    #[test]
    fn nc_counts_up_for_each_request_on_the_same_nonce() {
        let mut s = DigestSession::new();
        let creds = Credentials::new("u", "p");
        let response = challenged(
            401,
            &[(
                "WWW-Authenticate",
                r#"Digest realm="r", nonce="n1", qop="auth""#,
            )],
        );
        s.on_challenge(&response, &creds).unwrap();
        assert_eq!(s.nonce_count(AuthKind::Www, "r"), Some(0));

        let mut inv = invite();
        s.apply(&mut inv, &creds, "c1").unwrap();
        let auth = inv.get_other("Authorization").unwrap().to_owned();
        assert_eq!(param(&auth, "nc").as_deref(), Some("00000001"));
        assert_eq!(
            param(&auth, "uri").as_deref(),
            Some("sip:+15551234567@127.0.0.1")
        );

        // In-dialog BYE, answered up front on the same nonce.
        let mut bye = Message::request(Method::Bye, "sip:agent@127.0.0.1:5070");
        s.apply(&mut bye, &creds, "c2").unwrap();
        let auth = bye.get_other("authorization").unwrap();
        assert_eq!(param(auth, "nc").as_deref(), Some("00000002"));
        assert_eq!(param(auth, "cnonce").as_deref(), Some("c2"));
        assert_eq!(
            param(auth, "uri").as_deref(),
            Some("sip:agent@127.0.0.1:5070")
        );
        assert_eq!(s.nonce_count(AuthKind::Www, "r"), Some(2));
    }

    #[test]
    fn a_stale_challenge_restarts_nc_with_the_new_nonce() {
        let mut s = DigestSession::new();
        let creds = Credentials::new("u", "p");
        let first = challenged(
            407,
            &[(
                "Proxy-Authenticate",
                r#"Digest realm="r", nonce="n1", qop="auth""#,
            )],
        );
        s.on_challenge(&first, &creds).unwrap();
        let mut inv = invite();
        s.apply(&mut inv, &creds, "c").unwrap();
        s.apply(&mut inv, &creds, "c").unwrap();
        assert_eq!(s.nonce_count(AuthKind::Proxy, "r"), Some(2));

        let stale = challenged(
            407,
            &[(
                "Proxy-Authenticate",
                r#"Digest realm="r", nonce="n2", qop="auth", stale=true"#,
            )],
        );
        s.on_challenge(&stale, &creds).unwrap();
        s.apply(&mut inv, &creds, "c").unwrap();
        assert_eq!(count(&inv, "Proxy-Authorization"), 1);
        let auth = inv.get_other("Proxy-Authorization").unwrap();
        assert_eq!(param(auth, "nonce").as_deref(), Some("n2"));
        assert_eq!(param(auth, "nc").as_deref(), Some("00000001"));
    }

    #[test]
    fn the_answered_nonce_challenged_again_means_rejected_credentials() {
        let mut s = DigestSession::new();
        let creds = Credentials::new("u", "wrong");
        let response = challenged(
            401,
            &[(
                "WWW-Authenticate",
                r#"Digest realm="r", nonce="n1", qop="auth""#,
            )],
        );
        s.on_challenge(&response, &creds).unwrap();
        // Challenged again before answering: nothing sent yet, so not a rejection.
        s.on_challenge(&response, &creds).unwrap();
        let mut inv = invite();
        s.apply(&mut inv, &creds, "c").unwrap();
        assert_eq!(
            s.on_challenge(&response, &creds),
            Err(DigestError::Rejected("r".into()))
        );
        // A different nonce (the old one expired) is answered afresh.
        let fresh = challenged(
            401,
            &[(
                "WWW-Authenticate",
                r#"Digest realm="r", nonce="n2", qop="auth""#,
            )],
        );
        s.on_challenge(&fresh, &creds).unwrap();
        assert_eq!(s.nonce_count(AuthKind::Www, "r"), Some(0));
    }

    #[test]
    fn a_response_with_both_kinds_is_answered_with_both_headers() {
        let mut s = DigestSession::new();
        let creds = Credentials::new("u", "p");
        let response = challenged(
            407,
            &[
                (
                    "Proxy-Authenticate",
                    r#"Digest realm="proxy", nonce="p", qop="auth""#,
                ),
                ("WWW-Authenticate", r#"Digest realm="uas", nonce="w""#),
            ],
        );
        s.on_challenge(&response, &creds).unwrap();
        let mut inv = invite();
        inv.push_other("authorization", "Digest username=\"old\"");
        s.apply(&mut inv, &creds, "c").unwrap();
        assert_eq!(count(&inv, "Authorization"), 1);
        assert_eq!(
            param(inv.get_other("Authorization").unwrap(), "realm").as_deref(),
            Some("uas")
        );
        assert_eq!(
            param(inv.get_other("Proxy-Authorization").unwrap(), "realm").as_deref(),
            Some("proxy")
        );
    }

    #[test]
    fn credentials_go_on_requests_only_and_nothing_is_added_before_a_challenge() {
        let mut s = DigestSession::new();
        let creds = Credentials::new("u", "p");
        let mut inv = invite();
        s.apply(&mut inv, &creds, "c").unwrap();
        assert!(inv.get_other("Authorization").is_none());
        let mut resp = Message::response(200, "OK");
        assert_eq!(
            s.apply(&mut resp, &creds, "c"),
            Err(DigestError::NotARequest)
        );
    }

    #[test]
    fn at_most_max_realms_are_remembered() {
        let mut s = DigestSession::new();
        for i in 0..=MAX_REALMS {
            let c = Challenge::parse(&format!(r#"Digest realm="r{i}", nonce="n""#)).unwrap();
            s.remember(AuthKind::Www, c).unwrap();
        }
        assert_eq!(s.entries.len(), MAX_REALMS);
        assert_eq!(s.nonce_count(AuthKind::Www, "r0"), None);
        assert_eq!(
            s.nonce_count(AuthKind::Www, &format!("r{MAX_REALMS}")),
            Some(0)
        );
        s.clear();
        assert!(s.is_empty());
    }

    #[test]
    fn the_password_never_shows_in_debug_or_display() {
        let creds = Credentials::new("trunkuser", "Sup3rS3cret!").with_realm("sip.example.com");
        let shown = [
            format!("{creds:?}"),
            format!("{creds:#?}"),
            format!("{creds}"),
            format!("{:?}", Some(&creds)),
        ];
        for s in &shown {
            assert!(!s.contains("Sup3rS3cret"), "password leaked in {s}");
            assert!(s.contains("trunkuser"), "{s}");
        }
        assert!(shown[0].contains("<redacted>"));
        let answer = authorization(
            &Challenge::parse(r#"Digest realm="sip.example.com", nonce="n""#).unwrap(),
            &creds,
            &get_dir_index(),
            "c",
            1,
        )
        .unwrap();
        assert!(!answer.contains("Sup3rS3cret"));
    }

    #[test]
    fn header_names_follow_the_status() {
        assert_eq!(AuthKind::from_status(401), Some(AuthKind::Www));
        assert_eq!(AuthKind::from_status(407), Some(AuthKind::Proxy));
        assert_eq!(AuthKind::from_status(403), None);
        assert_eq!(AuthKind::Www.challenge_header(), "WWW-Authenticate");
        assert_eq!(AuthKind::Www.credentials_header(), "Authorization");
        assert_eq!(AuthKind::Proxy.challenge_header(), "Proxy-Authenticate");
        assert_eq!(AuthKind::Proxy.credentials_header(), "Proxy-Authorization");
    }
}
