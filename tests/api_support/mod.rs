//! Shared by the API and store integration tests: a tiny HTTP/1.1 client over real
//! loopback TCP (no mocks: the bytes go through holdless's HTTP server), free ports, and
//! the configuration the tests run holdless with.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response: status, lower-cased headers, body.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `data[0]` of a Scheduler API answer.
    pub fn item(&self) -> Value {
        self.json()["data"][0].clone()
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    extra_headers: &[(&str, &str)],
) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in extra_headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = extra_headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let typed = extra_headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if let (Some(b), false) = (body, chunked) {
        if !typed {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    if let Some(b) = body {
        if chunked {
            for part in b.chunks(4096) {
                let _ = s
                    .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                    .await;
                let _ = s.write_all(part).await;
                let _ = s.write_all(b"\r\n").await;
            }
            let _ = s.write_all(b"0\r\n\r\n").await;
        } else {
            // The server may answer (413) and close before reading it all.
            let _ = s.write_all(b).await;
        }
    }
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("response within 10 s")
        .ok();
    parse(&raw)
}

fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 4 + n..];
    }
    out
}

pub async fn get(port: u16, path: &str, token: Option<&str>) -> Resp {
    request(port, "GET", path, token, None, &[]).await
}

pub async fn post(port: u16, path: &str, token: Option<&str>, body: &str) -> Resp {
    request(port, "POST", path, token, Some(body.as_bytes()), &[]).await
}

/// A real holdless process; killed (SIGKILL) when dropped.
pub struct Holdless {
    /// The process.
    pub child: Child,
}

impl Holdless {
    /// Starts `holdless run --config cfg`, its log in `log`.
    pub fn spawn(cfg: &Path, log: &Path) -> Holdless {
        Self::spawn_logging(cfg, log, "info")
    }

    /// The same with the log level `level` (`RUST_LOG`).
    pub fn spawn_logging(cfg: &Path, log: &Path, level: &str) -> Holdless {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_holdless"))
            .args(["run", "--config"])
            .arg(cfg)
            .env("RUST_LOG", level)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn holdless");
        Holdless { child }
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed by holdless.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Holdless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP and UDP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Waits until `GET /healthz` answers 200.
pub async fn wait_healthy(port: u16) {
    for _ in 0..300 {
        if let Ok(Ok(mut s)) = tokio::time::timeout(
            Duration::from_millis(200),
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            let _ = s
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut raw = Vec::new();
            let _ = s.read_to_end(&mut raw).await;
            if raw.starts_with(b"HTTP/1.1 200") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("holdless did not answer /healthz on port {port}");
}

/// The test configuration: organizations `acme` (two call targets: `billing`, open around
/// the clock with appointments; `sales`, never open), `globex` (`support`) and `walled`
/// (an allow-list that excludes loopback).
pub fn config(sip: u16, http: u16, data_dir: &str) -> String {
    format!(
        r#"
[sip]
udp = ["127.0.0.1:{sip}"]
[http]
listen = "127.0.0.1:{http}"
[store]
data_dir = "{data_dir}"
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]

[[organizations]]
id = "acme"
api_tokens = ["acme-token-1", "acme-token-2"]
api_allow = ["127.0.0.0/8", "::1/128"]
[[organizations]]
id = "globex"
api_tokens = ["globex-token-1"]
api_allow = ["127.0.0.0/8"]
[[organizations]]
id = "walled"
api_tokens = ["walled-token-1"]
api_allow = ["10.0.0.0/8"]

[calls]
dial_callbacks = false   # these tests are about the API: nothing is dialled

[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
organization = "acme"
contact_center = "sip:+15550009999@127.0.0.1:5090"
pacing = 5
[call_targets.hours]
time_zone = "America/New_York"
daily = ["00:00-24:00"]
[call_targets.scheduled]
enabled = true
slot_minutes = 30
max_per_slot = 2
days_ahead = 1
[call_targets.number_rules]
allowed = [{{ country_code = "1", lengths = [10] }}]
default_country_code = "1"
blocked_prefixes = ["+1900"]

[[call_targets]]
id = "sales"
name = "Sales"
numbers = ["+15550002000"]
organization = "acme"
contact_center = "sip:+15550009998@127.0.0.1:5090"
[call_targets.hours]
time_zone = "Europe/Paris"
holidays = []

[[call_targets]]
id = "support"
name = "Support"
numbers = ["+15550003000"]
organization = "globex"
contact_center = "sip:+15550009997@127.0.0.1:5090"

[[call_targets]]
id = "vault"
name = "Vault"
numbers = ["+15550004000"]
organization = "walled"
contact_center = "sip:+15550009996@127.0.0.1:5090"

[[widgets]]
id = "billing-widget"
call_target = "billing"
message = "About {{minutes}} min"
[[widgets]]
id = "sales-widget"
call_target = "sales"
[[widgets]]
id = "support-widget"
call_target = "support"
[[widgets]]
id = "vault-widget"
call_target = "vault"
"#
    )
}
