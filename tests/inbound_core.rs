//! The inbound transfer flow driven through the endpoint with scripted SIP and a fake
//! clock: the real media controller, the real prompt set, and the real callback engine
//! answering the views and registrations the call core asks for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
mod call_support;

use call_support::{reparse, request, respond, sdp, status, Shared};
use holdless::acl::{Egress, FloodGuard};
use holdless::call::ivr::menu::{RefusalKind, RegisteredSummary};
use holdless::call::{inbound_targets, CallEvent, EndReason};
use holdless::callback::engine::{Engine, RegisterRequest};
use holdless::callback::record::RecordEntry;
use holdless::config::Config;
use holdless::endpoint::Endpoint;
use holdless::media::config::MediaConfig;
use holdless::media::controller::MediaController;
use holdless::media::dtmf::{Digit, DtmfEvent, DtmfSource};
use holdless::media::{MediaEvent, MediaId, Side};
use holdless::metrics::Counters;
use holdless::sip::shard::Shard;
use holdless::sip::{Message, Method, Name, Peer, Transmit};

const CONFIG: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
[flood]
max_requests = 1000000
[[organizations]]
id = "demo"
name = "Demo"
api_tokens = ["test-token-1"]
api_allow = ["127.0.0.0/8"]
[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
organization = "demo"
contact_center = "sip:+15550009999@127.0.0.1:5090"
NOT_OFFERING
[call_targets.hours]
time_zone = "UTC"
daily = ["HOURS"]
[call_targets.scheduled]
enabled = false
[call_targets.number_rules]
allowed = [{ country_code = "1", lengths = [10] }]
default_country_code = "1"
"#;

const CALLER: &str = "127.0.0.10:5070";
const CC: &str = "127.0.0.1:5090";

static BRANCH: AtomicU64 = AtomicU64::new(0);

struct Harness {
    ep: Endpoint,
    media: Shared,
    engine: Engine,
    utc: DateTime<Utc>,
    now: Instant,
    events: Vec<CallEvent>,
    /// The callback engine does not answer view requests (it hangs).
    engine_silent: bool,
}

impl Harness {
    /// The call target open `hours` (UTC), with `not_offering` lines added.
    fn new(hours: &str, not_offering: &str) -> Self {
        let text = CONFIG
            .replace("HOURS", hours)
            .replace("NOT_OFFERING", not_offering);
        let cfg = Config::parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
        let media = Shared::default();
        *media.ctl.lock().unwrap() = Some(MediaController::new(
            MediaConfig::default(),
            Egress::new(cfg.egress_allow.clone()),
        ));
        let flood = Arc::new(Mutex::new(FloodGuard::new(&cfg.flood)));
        let utc = Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap();
        let ep = Endpoint::sharded(
            &cfg,
            Counters::default(),
            7,
            Box::new(media.clone()),
            Shard::SOLE,
            flood,
        )
        .with_inbound(inbound_targets(&cfg).expect("the shipped prompts load"))
        .with_clock(Arc::new(move || utc));
        let targets = cfg.engine_targets();
        Harness {
            ep,
            media,
            engine: Engine::new(targets, 3),
            utc,
            now: Instant::now(),
            events: Vec::new(),
            engine_silent: false,
        }
    }

    fn open() -> Self {
        Self::new("00:00-24:00", "")
    }

    fn send(&mut self, from: &str, msg: &str) -> Vec<Message> {
        let peer = Peer::udp(from.parse().unwrap());
        self.ep.handle_message(self.now, msg.as_bytes(), peer);
        self.settle()
    }

    /// Drains what holdless sends, answering the engine requests with the real engine.
    fn settle(&mut self) -> Vec<Message> {
        let mut out: Vec<Message> = Vec::new();
        loop {
            out.extend(
                std::iter::from_fn(|| self.ep.poll_transmit())
                    .collect::<Vec<Transmit>>()
                    .iter()
                    .map(reparse),
            );
            let Some(ev) = self.ep.poll_call_event() else {
                return out;
            };
            match ev {
                CallEvent::ViewWanted { .. } if self.engine_silent => {}
                CallEvent::ViewWanted { call, call_target } => {
                    let view = self.engine.target_view(self.utc, &call_target, true);
                    self.ep.view_ready(self.now, call, Some((self.utc, view)));
                }
                CallEvent::Register { call, request } => {
                    self.events.push(CallEvent::Register {
                        call,
                        request: request.clone(),
                    });
                    let result = match self.engine.handle_register(self.utc, *request) {
                        Ok(r) => Ok(RegisteredSummary::from(&r)),
                        Err(r) => Err(RefusalKind::from(&r)),
                    };
                    self.ep.registration_done(self.now, call, result);
                }
                other => self.events.push(other),
            }
        }
    }

    fn advance(&mut self, by: Duration) -> Vec<Message> {
        let until = self.now + by;
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.ep.handle_timeout(self.now);
            out.extend(self.settle());
        }
        self.now = until;
        out
    }

    fn invite(&mut self, n: u32, from_user: &str) -> Vec<Message> {
        self.invite_with(n, from_user, &sdp("127.0.0.10", 40000, "8 0 101"))
    }

    /// An INVITE with this body (empty: a delayed offer).
    fn invite_with(&mut self, n: u32, from_user: &str, body: &str) -> Vec<Message> {
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let msg = format!(
            "INVITE sip:+15550001000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKin{n}\r\n\
             Max-Forwards: 70\r\nFrom: \"Caller\" <sip:{from_user}@127.0.0.10>;tag=ca{n}\r\n\
             To: <sip:+15550001000@127.0.0.1>\r\nCall-ID: in-{n}@caller\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{CALLER}>\r\nX-User-To-User: 4142432d3132333435;encoding=hex\r\n\
             {ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.send(CALLER, &msg)
    }

    /// INVITE, the 200 with holdless's own SDP, ACK: the caller is in the menu.
    fn answered(&mut self, n: u32) -> Message {
        let out = self.invite(n, "+15557654321");
        let ok = status(&out, 200)
            .expect("holdless answers the caller itself")
            .clone();
        let body = String::from_utf8_lossy(&ok.body).to_string();
        assert!(
            body.contains("RTP/AVP 8 101"),
            "PCMA and telephone-event agreed: {body}"
        );
        assert!(self.send(CALLER, &ack_for(&ok, 1)).is_empty());
        ok
    }

    fn media(&self) -> MediaId {
        self.plays()[0].0
    }

    fn plays(&self) -> Vec<(MediaId, Duration)> {
        self.media.plays.lock().unwrap().clone()
    }

    fn digit(&mut self, c: char) -> Vec<Message> {
        let ev = MediaEvent::Digit {
            id: self.media(),
            side: Side::Caller,
            event: DtmfEvent {
                digit: Digit::from_char(c).unwrap(),
                at: self.now,
                duration_ms: 100,
                source: DtmfSource::Rfc4733,
            },
        };
        self.ep.local_media(self.now, ev);
        self.settle()
    }

    fn prompt_done(&mut self) -> Vec<Message> {
        let ev = MediaEvent::PlayFinished {
            id: self.media(),
            side: Side::Caller,
        };
        self.ep.local_media(self.now, ev);
        self.settle()
    }

    fn registrations(&self) -> Vec<RegisterRequest> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Register { request, .. } => Some((**request).clone()),
                _ => None,
            })
            .collect()
    }

    fn records(&self) -> Vec<RecordEntry> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Record(r) => Some((**r).clone()),
                _ => None,
            })
            .collect()
    }

    fn ended(&self) -> Vec<EndReason> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Ended { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

fn ack_for(ok: &Message, cseq: u32) -> String {
    format!(
        "ACK sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKack{}\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
        BRANCH.fetch_add(1, Ordering::Relaxed),
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap()
    )
}

/// A request from the caller inside the dialog holdless's 200 `ok` made.
fn from_caller(ok: &Message, method: &str, cseq: u32, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{method}{}\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:caller@{CALLER}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        BRANCH.fetch_add(1, Ordering::Relaxed),
        ok.get(Name::From).unwrap(),
        ok.get(Name::To).unwrap(),
        ok.call_id().unwrap(),
        body.len()
    )
}

/// A response from the contact center to holdless's INVITE.
fn cc_answer(req: &Message, code: u16, body: Option<&str>) -> String {
    respond(req, code, body, &format!("agent@{CC}"), "cc1")
}

#[test]
fn pressing_1_registers_the_callers_number_with_the_decoded_metadata_then_holdless_hangs_up() {
    let mut h = Harness::open();
    h.answered(1);
    assert_eq!(
        h.plays().len(),
        1,
        "the offer and the menu start playing at once"
    );
    let out = h.digit('1');
    assert!(out.is_empty(), "nothing on the wire for a key press");
    let regs = h.registrations();
    assert_eq!(regs.len(), 1, "one registration");
    let r = &regs[0];
    assert_eq!(r.call_target, "billing");
    assert_eq!(r.number, "+15557654321", "the caller's own number");
    assert_eq!(r.appointment, None);
    let inbound = r
        .inbound
        .as_ref()
        .expect("the inbound call travels with it");
    assert_eq!(inbound.ani.as_deref(), Some("+15557654321"));
    assert_eq!(inbound.source(), "Phone:+15550001000");
    assert_eq!(inbound.created_at, h.utc);
    assert_eq!(
        inbound.metadata["X-User-To-User"], "ABC-12345",
        "hex decoded"
    );
    assert_eq!(
        r.sip_headers,
        vec![(
            "X-User-To-User".to_owned(),
            "4142432d3132333435;encoding=hex".to_owned()
        )],
        "the raw value goes back on the agent leg"
    );
    assert_eq!(h.engine.active(), 1, "the engine holds the callback");
    assert_eq!(
        *h.media.stops.lock().unwrap(),
        1,
        "barge-in stopped the menu"
    );
    assert_eq!(h.plays().len(), 2, "the confirmation plays");
    let out = h.prompt_done();
    let bye = request(&out, Method::Bye).expect("holdless hangs up after the confirmation");
    assert_eq!(bye.call_id(), Some("in-1@caller"));
    let out = h.send(CALLER, &cc_answer(bye, 200, None));
    assert!(out.is_empty());
    assert_eq!(h.ended(), vec![EndReason::Completed]);
    assert!(
        h.records().is_empty(),
        "a registered callback carries the inbound fields instead"
    );
}

#[test]
fn pressing_0_bridges_to_the_contact_center_without_touching_the_caller_and_records_chose_to_hold()
{
    let mut h = Harness::open();
    let ok = h.answered(2);
    let out = h.digit('0');
    let inv = request(&out, Method::Invite)
        .expect("INVITE to the contact center")
        .clone();
    assert_eq!(h.plays().len(), 2, "the connecting prompt while it rings");
    assert!(inv
        .request_uri()
        .unwrap()
        .contains("+15550009999@127.0.0.1:5090"));
    let offer = String::from_utf8_lossy(&inv.body).to_string();
    assert!(
        offer.contains("RTP/AVP 8 0 101"),
        "the caller's law first, the other law, events: {offer}"
    );
    assert!(h.registrations().is_empty());
    let media = h.media();
    assert!(
        h.media
            .with(|c| c.local_params(media, Side::Caller))
            .is_some(),
        "still local while ringing"
    );
    let out = h.send(
        CC,
        &cc_answer(&inv, 200, Some(&sdp("127.0.0.1", 41000, "8 101"))),
    );
    assert!(
        request(&out, Method::Ack).is_some(),
        "the contact center's 200 is ACKed"
    );
    assert!(
        out.iter().all(|m| m.call_id() != Some("in-2@caller")),
        "no re-INVITE to the caller"
    );
    assert!(
        h.media
            .with(|c| c.local_params(media, Side::Caller))
            .is_none(),
        "joined through the relay"
    );
    let out = h.send(CALLER, &from_caller(&ok, "BYE", 2, "", ""));
    assert!(status(&out, 200).is_some());
    let bye = request(&out, Method::Bye).expect("BYE to the contact center");
    h.send(CC, &cc_answer(bye, 200, None));
    assert_eq!(h.ended(), vec![EndReason::HungUp(Side::Caller)]);
    let records = h.records();
    assert_eq!(records.len(), 1);
    let rec = serde_json::to_value(&records[0].record).unwrap();
    assert_eq!(records[0].organization, "demo");
    assert_eq!(rec["choseToHold"], true);
    assert_eq!(rec["type"], "unknown");
    assert_eq!(rec["ani"], "+15557654321");
    assert_eq!(rec["source"], "Phone:+15550001000");
}

#[test]
fn a_caller_who_hangs_up_in_the_menu_registers_nothing_and_leaves_an_early_hangup_record() {
    let mut h = Harness::open();
    let ok = h.answered(3);
    h.advance(Duration::from_secs(2));
    let out = h.send(CALLER, &from_caller(&ok, "BYE", 2, "", ""));
    assert!(status(&out, 200).is_some());
    assert!(h.registrations().is_empty());
    assert_eq!(h.engine.active(), 0);
    let records = h.records();
    assert_eq!(records.len(), 1);
    let rec = serde_json::to_value(&records[0].record).unwrap();
    assert_eq!(rec["earlyHangup"], true);
    assert_eq!(rec["choseToHold"], false);
    assert_eq!(rec["metadata"]["X-User-To-User"], "ABC-12345");
}

#[test]
fn dtmf_by_sip_info_drives_the_menu() {
    let mut h = Harness::open();
    let ok = h.answered(4);
    let info = from_caller(
        &ok,
        "INFO",
        2,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=1\r\nDuration=160\r\n",
    );
    let out = h.send(CALLER, &info);
    assert!(status(&out, 200).is_some(), "INFO answered 200: {out:?}");
    assert_eq!(
        h.registrations().len(),
        1,
        "the key registered the callback"
    );
    let junk = from_caller(&ok, "INFO", 3, "Content-Type: application/json\r\n", "{}");
    let out = h.send(CALLER, &junk);
    assert!(status(&out, 415).is_some(), "other INFO bodies: 415");
}

#[test]
fn no_input_plays_the_menu_again_then_says_goodbye_and_hangs_up() {
    let mut h = Harness::open();
    h.answered(5);
    h.prompt_done();
    assert!(
        h.advance(Duration::from_secs(7)).is_empty(),
        "menu again, no SIP"
    );
    assert_eq!(
        h.plays().len(),
        2,
        "the menu replayed after the input timeout"
    );
    h.prompt_done();
    h.advance(Duration::from_secs(7));
    assert_eq!(h.plays().len(), 3, "the goodbye");
    let out = h.prompt_done();
    assert!(request(&out, Method::Bye).is_some(), "holdless hangs up");
    assert!(h.registrations().is_empty());
}

#[test]
fn a_reinvite_during_the_menu_is_answered_by_holdless_itself() {
    let mut h = Harness::open();
    let ok = h.answered(6);
    let hold = sdp("127.0.0.10", 40000, "8 101").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    let reinvite = from_caller(&ok, "INVITE", 2, "Content-Type: application/sdp\r\n", &hold);
    let out = h.send(CALLER, &reinvite);
    let ok2 = status(&out, 200).expect("re-INVITE answered");
    let body = String::from_utf8_lossy(&ok2.body).to_string();
    assert!(
        body.contains("a=recvonly"),
        "holdless answers a sendonly offer with recvonly: {body}"
    );
    assert!(
        out.iter().all(|m| m.method() != Some(&Method::Invite)),
        "nothing relayed"
    );
}

#[test]
fn not_offering_reject_answers_the_configured_status() {
    // Closed all day: nothing offered, and this call target rejects.
    let mut h = Harness::new(
        "00:00-00:01",
        "not_offering = \"reject\"\nreject_status = 486\n[call_targets.next_day]\nenabled = false",
    );
    h.utc = Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap();
    let out = h.invite(7, "+15557654321");
    assert!(status(&out, 486).is_some(), "{out:?}");
    assert!(status(&out, 200).is_none());
    let records = h.records();
    assert_eq!(records.len(), 1, "the refusal is recorded");
    let rec = serde_json::to_value(&records[0].record).unwrap();
    assert_eq!(rec["choseToHold"], false);
    assert_eq!(h.ended(), vec![EndReason::Rejected(486)]);
}

#[test]
fn not_offering_bridge_relays_the_caller_to_the_contact_center_answering_when_it_answers() {
    let mut h = Harness::new(
        "00:00-00:01",
        "not_offering = \"bridge\"\n[call_targets.next_day]\nenabled = false",
    );
    let out = h.invite(8, "+15557654321");
    assert!(status(&out, 200).is_none(), "not answered by holdless");
    let inv = request(&out, Method::Invite)
        .expect("straight to the contact center")
        .clone();
    let out = h.send(CC, &cc_answer(&inv, 180, None));
    assert!(status(&out, 180).is_some(), "ringing relayed to the caller");
    let out = h.send(
        CC,
        &cc_answer(&inv, 200, Some(&sdp("127.0.0.1", 41000, "0 101"))),
    );
    let ok = status(&out, 200).expect("the caller answered when the contact center answered");
    let body = String::from_utf8_lossy(&ok.body).to_string();
    assert!(body.contains("m=audio"), "{body}");
    assert!(h.plays().is_empty(), "no prompt");
}

#[test]
fn dtmf_info_in_a_bridged_call_is_relayed_to_the_other_leg() {
    let mut h = Harness::open();
    let ok = h.answered(9);
    let out = h.digit('0');
    let inv = request(&out, Method::Invite).unwrap().clone();
    h.send(
        CC,
        &cc_answer(&inv, 200, Some(&sdp("127.0.0.1", 41000, "8 101"))),
    );
    let info = from_caller(
        &ok,
        "INFO",
        2,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=100\r\n",
    );
    let out = h.send(CALLER, &info);
    assert!(status(&out, 200).is_some(), "answered at once");
    let relayed = request(&out, Method::Info).expect("INFO to the contact center");
    assert_eq!(
        relayed.call_id(),
        inv.call_id(),
        "in the contact center's dialog"
    );
    assert_eq!(
        relayed.get(Name::ContentType),
        Some("application/dtmf-relay")
    );
    assert_eq!(&relayed.body[..], b"Signal=5\r\nDuration=100\r\n");
    assert!(
        h.registrations().is_empty(),
        "the menu is over: the key is not taken"
    );
}

#[test]
fn a_busy_contact_center_gets_the_held_caller_an_apology_then_bye_and_an_agent_busy_record() {
    let mut h = Harness::open();
    h.answered(10);
    let out = h.digit('*');
    let inv = request(&out, Method::Invite)
        .expect("INVITE to the contact center")
        .clone();
    let plays = h.plays().len();
    let out = h.send(CC, &cc_answer(&inv, 486, None));
    assert!(request(&out, Method::Ack).is_some(), "the 486 is ACKed");
    assert!(
        request(&out, Method::Bye).is_none(),
        "the caller is not dropped at once"
    );
    assert_eq!(h.plays().len(), plays + 1, "the hold-failed prompt plays");
    let out = h.prompt_done();
    let bye = request(&out, Method::Bye).expect("then BYE");
    assert_eq!(bye.call_id(), Some("in-10@caller"));
    h.send(CALLER, &cc_answer(bye, 200, None));
    let records = h.records();
    assert_eq!(records.len(), 1);
    let rec = serde_json::to_value(&records[0].record).unwrap();
    assert_eq!(rec["choseToHold"], true);
    assert_eq!(rec["agentBusy"], true);
}

#[test]
fn a_contact_center_that_never_answers_is_cancelled_and_the_held_caller_hears_why() {
    let mut h = Harness::open();
    h.answered(11);
    let out = h.digit('0');
    let inv = request(&out, Method::Invite).unwrap().clone();
    h.send(CC, &cc_answer(&inv, 180, None));
    let out = h.advance(Duration::from_secs(61));
    let cancel = request(&out, Method::Cancel).expect("CANCEL after the ring timeout");
    let out = h.send(CC, &cc_answer(cancel, 200, None));
    assert!(out.is_empty());
    let out = h.send(CC, &cc_answer(&inv, 487, None));
    assert!(request(&out, Method::Bye).is_none());
    let out = h.advance(Duration::from_secs(10));
    let bye = request(&out, Method::Bye)
        .expect("BYE once the apology is over (bounded)")
        .clone();
    h.send(CALLER, &cc_answer(&bye, 200, None));
    assert_eq!(h.ended(), vec![EndReason::Completed]);
    let rec = serde_json::to_value(&h.records()[0].record).unwrap();
    assert_eq!(rec["agentLegTimeout"], true);
}

/// The ACK for `ok` carrying an SDP answer.
fn ack_with_answer(ok: &Message, body: &str) -> String {
    ack_for(ok, 1).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn a_delayed_offer_gets_holdless_offer_in_the_200_and_the_menu_starts_with_the_acks_answer() {
    let mut h = Harness::open();
    let out = h.invite_with(12, "+15557654321", "");
    let ok = status(&out, 200).expect("answered with an offer").clone();
    let offer = String::from_utf8_lossy(&ok.body).to_string();
    assert!(
        offer.contains("RTP/AVP 0 8 101"),
        "both laws and events: {offer}"
    );
    assert!(h.plays().is_empty(), "nothing plays before the answer");
    let out = h.send(
        CALLER,
        &ack_with_answer(&ok, &sdp("127.0.0.10", 40000, "8 101")),
    );
    assert!(out.is_empty());
    assert_eq!(h.plays().len(), 1, "the offer and menu start with the ACK");
    h.digit('1');
    assert_eq!(h.registrations().len(), 1);
}

#[test]
fn a_delayed_offer_whose_ack_has_no_answer_is_hung_up() {
    let mut h = Harness::open();
    let out = h.invite_with(13, "+15557654321", "");
    let ok = status(&out, 200).unwrap().clone();
    let out = h.send(CALLER, &ack_for(&ok, 1));
    assert!(request(&out, Method::Bye).is_some(), "no media agreed: BYE");
    assert!(h.plays().is_empty());
}

#[test]
fn a_callback_engine_that_does_not_answer_is_taken_as_unavailable_after_three_seconds() {
    let mut h = Harness::open();
    h.engine_silent = true;
    let out = h.invite(14, "+15557654321");
    assert!(status(&out, 100).is_some());
    assert!(
        request(&out, Method::Invite).is_none(),
        "waits for the view"
    );
    let out = h.advance(Duration::from_secs(3));
    let inv = request(&out, Method::Invite).expect("not offered: bridged to the contact center");
    assert!(inv.request_uri().unwrap().contains("+15550009999"));
}

#[test]
fn not_offering_announce_answers_plays_why_and_hangs_up() {
    let mut h = Harness::new(
        "00:00-00:01",
        "not_offering = \"announce\"\n[call_targets.next_day]\nenabled = false",
    );
    let out = h.invite(15, "+15557654321");
    let ok = status(&out, 200).expect("answered to be told").clone();
    assert!(request(&out, Method::Invite).is_none(), "not bridged");
    assert_eq!(h.plays().len(), 1, "the closed prompt");
    h.send(CALLER, &ack_for(&ok, 1));
    let out = h.prompt_done();
    let bye = request(&out, Method::Bye).expect("then BYE").clone();
    h.send(CALLER, &cc_answer(&bye, 200, None));
    assert!(h.registrations().is_empty());
    let rec = serde_json::to_value(&h.records()[0].record).unwrap();
    assert_eq!(rec["outcome"], "NotOffered");
}

#[test]
fn shutting_down_hangs_up_on_callers_in_the_menu_and_records_them() {
    let mut h = Harness::open();
    h.answered(16);
    h.ep.shut_down(h.now);
    let out = h.settle();
    let bye = request(&out, Method::Bye)
        .expect("BYE to the caller")
        .clone();
    h.send(CALLER, &cc_answer(&bye, 200, None));
    assert_eq!(h.ended(), vec![EndReason::Shutdown]);
    assert_eq!(h.records().len(), 1, "the call is recorded");
}
