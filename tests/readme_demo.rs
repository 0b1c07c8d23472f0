//! The README's Scheduler API walk-through, end to end: the real holdless binary runs on a
//! copy of `configs/holdless.toml` (SIP and HTTP moved to free loopback ports, the store in
//! a temp dir), and the `curl` commands are read out of the README's "HTTP API" block and
//! sent as curl sends them (same method, headers and body). A change to the README, the
//! example configuration or the API that breaks the walk-through fails here.

mod api_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_support::{free_port, request, Resp};
use serde_json::Value;

/// The README's HTTP address: the example configuration's `http.listen`.
const README_HTTP: &str = "127.0.0.1:8080";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// One `curl` of the README.
#[derive(Debug)]
struct Curl {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

/// Splits a shell line into commands (`;`) of words, honouring '…' and "…" quoting and
/// expanding `$NAME` from `vars` inside double quotes and bare words.
fn shell_commands(line: &str, vars: &[(String, String)]) -> Vec<Vec<String>> {
    let expand = |w: &str| {
        vars.iter()
            .fold(w.to_owned(), |w, (k, v)| w.replace(&format!("${k}"), v))
    };
    let (mut cmds, mut words, mut word) = (vec![], vec![], None::<String>);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let quoted: String = chars.by_ref().take_while(|&c| c != '"').collect();
                word.get_or_insert_with(String::new)
                    .push_str(&expand(&quoted));
            }
            ' ' | '\t' | ';' => {
                words.extend(word.take());
                if c == ';' {
                    cmds.push(std::mem::take(&mut words));
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word.take());
    cmds.push(words);
    cmds.retain(|c| !c.is_empty());
    // Bare `$NAME` words.
    for c in &mut cmds {
        for w in c.iter_mut() {
            if w.starts_with('$') {
                *w = expand(w);
            }
        }
    }
    cmds
}

/// The `curl` commands of the README's first `sh` block under "## HTTP API", in order.
fn readme_curls() -> Vec<Curl> {
    let readme = std::fs::read_to_string(repo("README.md")).expect("README.md");
    let section = readme
        .split_once("## HTTP API")
        .expect("README has an \"HTTP API\" section")
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, b)| b.split_once("```"))
        .expect("an sh block in the HTTP API section")
        .0;
    // Drop comments, join `\` continuations.
    let text = block
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let mut vars = vec![];
    let mut curls = vec![];
    for line in text.lines() {
        for cmd in shell_commands(line, &vars) {
            if let Some((k, v)) = cmd[0].split_once('=').filter(|_| cmd.len() == 1) {
                vars.push((k.to_owned(), v.to_owned()));
                continue;
            }
            assert_eq!(cmd[0], "curl", "only curl in the block: {cmd:?}");
            let mut c = Curl {
                method: "GET",
                path: String::new(),
                headers: vec![],
                body: None,
            };
            let mut args = cmd[1..].iter();
            while let Some(a) = args.next() {
                match a.as_str() {
                    "-s" => {}
                    "-H" => {
                        let h = args.next().expect("-H value");
                        let (k, v) = h.split_once(':').expect("a header");
                        c.headers.push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                    "-d" => {
                        c.method = "POST";
                        c.body = Some(args.next().expect("-d value").clone());
                    }
                    url => {
                        c.path = url
                            .strip_prefix(README_HTTP)
                            .unwrap_or_else(|| panic!("a URL on {README_HTTP}: {url}"))
                            .to_owned();
                    }
                }
            }
            // What curl adds by itself.
            c.headers.push(("User-Agent".into(), "curl/8.14.1".into()));
            c.headers.push(("Accept".into(), "*/*".into()));
            if c.body.is_some() {
                c.headers.push((
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
            }
            curls.push(c);
        }
    }
    curls
}

/// `configs/holdless.toml` with SIP and HTTP on free loopback ports and the store in `data`.
fn demo_config(sip: u16, http: u16, data: &Path) -> String {
    let text = std::fs::read_to_string(repo("configs/holdless.toml")).expect("example config");
    let mut t: toml::Table = text.parse().expect("example config is TOML");
    let mut set = |section: &str, key: &str, v: toml::Value| {
        let slot = t
            .get_mut(section)
            .and_then(|s| s.as_table_mut())
            .and_then(|s| s.get_mut(key))
            .unwrap_or_else(|| panic!("{section}.{key} in the example configuration"));
        std::mem::replace(slot, v)
    };
    let sip_addr = toml::Value::Array(vec![format!("127.0.0.1:{sip}").into()]);
    set("sip", "udp", sip_addr.clone());
    set("sip", "tcp", sip_addr);
    let was = set("http", "listen", format!("127.0.0.1:{http}").into());
    assert_eq!(was.as_str(), Some(README_HTTP), "the README's curls use it");
    set("store", "data_dir", data.display().to_string().into());
    // Relative folders are read from the working directory (the repository root in the
    // README); this copy runs elsewhere.
    for target in t
        .get_mut("call_targets")
        .and_then(|v| v.as_array_mut())
        .into_iter()
        .flatten()
    {
        if let Some(p) = target.get_mut("prompts") {
            *p = repo(p.as_str().unwrap_or("configs/prompts"))
                .display()
                .to_string()
                .into();
        }
    }
    toml::to_string(&t).expect("TOML")
}

struct Holdless {
    child: Child,
    log: PathBuf,
}

impl Holdless {
    /// Starts the binary and waits for `/healthz`; shows its log if it exits or never answers.
    async fn start(cfg: &Path, cwd: &Path, http: u16) -> Holdless {
        let log = cwd.join("holdless.log");
        let child = Command::new(env!("CARGO_BIN_EXE_holdless"))
            .args(["run", "--config"])
            .arg(cfg)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn holdless");
        let mut h = Holdless { child, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = h.child.try_wait() {
                panic!("holdless exited ({st}):\n{}", h.log_text());
            }
            if let Ok(Ok(_)) = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(("127.0.0.1", http)),
            )
            .await
            {
                if request(http, "GET", "/healthz", None, None, &[])
                    .await
                    .status
                    == 200
                {
                    return h;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no /healthz within 60 s:\n{}",
                h.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Holdless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(http: u16, c: &Curl) -> Resp {
    let headers: Vec<(&str, &str)> = c
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    request(
        http,
        c.method,
        &c.path,
        None,
        c.body.as_deref().map(str::as_bytes),
        &headers,
    )
    .await
}

fn widget_shape(w: &Value) {
    assert_eq!(w["widget_state"], "offer_callback", "{w}");
    assert_eq!(
        (w["offer_asap"].as_bool(), w["offer_scheduled"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(w["ewt"], 20, "nothing ahead: the minimum delay: {w}");
    assert_eq!(
        w["message"], "We can call you back in less than a minute.",
        "the widget's template, worded naturally (was \"in approximately 1 minutes\")"
    );
    let slots = w["scheduled_timeslots"].as_array().expect("timeslots");
    assert!(
        !slots.is_empty() && slots.iter().all(|s| s.as_i64().is_some()),
        "{w}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curl_walk_through_works_on_the_example_configuration() {
    let curls = readme_curls();
    let paths: Vec<&str> = curls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/widget/billing-widget",
            "/api/widget/billing-widget/request_callback",
            "/api/organization/demo/callback_status",
            "/api/organization/demo/cancel_callback",
            "/api/organization/demo/widget_status",
            "/readyz",
            "/openapi.json",
        ],
        "the README's sequence changed: update this test with it"
    );
    for c in &curls[..5] {
        assert!(
            c.headers
                .iter()
                .any(|(k, v)| k == "Authorization" && v == "Bearer demo-token"),
            "{} is sent with the demo token: {:?}",
            c.path,
            c.headers
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (sip, http) = (free_port(), free_port());
    let cfg = dir.path().join("holdless.toml");
    std::fs::write(&cfg, demo_config(sip, http, &data)).unwrap();
    let h = Holdless::start(&cfg, dir.path(), http).await;

    // Should the flow offer a callback?
    let r = send(http, &curls[0]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    widget_shape(&r.item());

    // The caller accepts.
    let r = send(http, &curls[1]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let item = r.item();
    assert_eq!(item["status"], "Requested", "{item}");
    let id = item["callback_request_id"].as_str().expect("id").to_owned();
    assert!(!id.is_empty());
    assert!(item["requested_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(item["ewt"], 20, "the minimum delay");
    assert_eq!(
        item["message"],
        "Thank you. We will call you back in less than a minute."
    );

    // Where is it?
    let r = send(http, &curls[2]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data_items = r.json()["data"].as_array().expect("data").clone();
    assert_eq!(data_items.len(), 1, "{}", r.text());
    let st = &data_items[0];
    assert_eq!(st["call_request_id"], id.as_str());
    assert_eq!(st["callback_number"], "+15551234567");
    assert_eq!(st["contact_uri"], "tel:+15551234567");
    assert_eq!(st["call_target_id"], "billing");
    assert_eq!(st["status"], "Pending");
    assert_eq!(st["type"], "asap");
    assert_eq!(st["source"], "CBWidget:billing-widget");
    assert_eq!(st["forecast_waitlist_position"], "1");
    for k in ["created_at", "estimated_for", "estimated_wait_time"] {
        assert!(
            st[k].as_str().is_some_and(|v| v.parse::<i64>().is_ok()),
            "{k}: {st}"
        );
    }
    // user_data is kept with the callback (the holdless extension shows it).
    let auth = [("Authorization", "Bearer demo-token")];
    let rec = request(
        http,
        "GET",
        &format!("/api/organization/demo/callback/{id}"),
        None,
        None,
        &auth,
    )
    .await
    .item();
    assert_eq!(rec["user_data"]["account"], "42", "{rec}");

    // The caller changed their mind.
    let r = send(http, &curls[3]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.item()["status"], "Canceled", "{}", r.text());
    assert_eq!(r.item()["cancel_callback_request_id"], id.as_str());
    let r = send(http, &curls[2]).await;
    assert_eq!(
        r.json()["data"],
        Value::Array(vec![]),
        "nothing waits any more"
    );

    // Every widget of the organization at once.
    let r = send(http, &curls[4]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ws = r.json()["data"].as_array().expect("data").clone();
    assert_eq!(ws.len(), 1, "{}", r.text());
    assert_eq!(
        (
            ws[0]["widget_id"].as_str(),
            ws[0]["call_target_id"].as_str()
        ),
        (Some("billing-widget"), Some("billing"))
    );
    widget_shape(&ws[0]);

    let r = send(http, &curls[5]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ready\n"));
    let r = send(http, &curls[6]).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["openapi"].as_str().unwrap().starts_with("3."));

    // The store lives where the copy says, not in the repository's data/.
    assert!(data.join("holdless.sqlite3").is_file(), "{}", h.log_text());
    drop(h);
}
