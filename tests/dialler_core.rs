//! The dialler's flows driven through the endpoint with scripted SIP and a fake clock: the
//! real media controller and prompt set, the customer's phone and the contact center
//! played by the test. Each test checks the SIP holdless sends and the attempt it reports.

mod call_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use holdless::acl::{Egress, FloodGuard};
use holdless::call::dialler::Hop;
use holdless::call::{inbound_targets, CallEvent};
use holdless::callback::attempt::{AttemptReport, LegEnd, Party};
use holdless::callback::{AttemptResult, FirstParty, Launch};
use holdless::config::Config;
use holdless::endpoint::Endpoint;
use holdless::media::config::MediaConfig;
use holdless::media::controller::MediaController;
use holdless::media::dtmf::{Digit, DtmfEvent, DtmfSource};
use holdless::media::{MediaEvent, MediaId, Side};
use holdless::metrics::Counters;
use holdless::sip::shard::Shard;
use holdless::sip::{Message, Method, Name, Peer, Transmit};

use call_support::{reparse, request, respond, sdp, Shared};

const CUSTOMER: &str = "127.0.0.1:5080";
const CUSTOMER_2: &str = "127.0.0.2:5080";
const AGENT: &str = "127.0.0.1:5090";

const CONFIG: &str = r#"
[sip]
udp = ["127.0.0.1:5060"]
[acl]
allow = ["127.0.0.0/8"]
[egress]
allow = ["127.0.0.0/8"]
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
caller_id = "+15550001000"
[call_targets.dialler]
customer_ring_timeout_secs = 20
agent_ring_timeout_secs = 40
press_timeout_secs = 5
EXTRA
"#;

struct Harness {
    ep: Endpoint,
    media: Shared,
    now: Instant,
    events: Vec<CallEvent>,
}

impl Harness {
    fn new(extra: &str) -> Self {
        let cfg =
            Config::parse(&CONFIG.replace("EXTRA", extra)).unwrap_or_else(|e| panic!("{e:?}"));
        let media = Shared::default();
        *media.ctl.lock().unwrap() = Some(MediaController::new(
            MediaConfig::default(),
            Egress::new(cfg.egress_allow.clone()),
        ));
        let flood = Arc::new(Mutex::new(FloodGuard::new(&cfg.flood)));
        let utc = Utc.with_ymd_and_hms(2026, 12, 4, 15, 0, 0).unwrap();
        let ep = Endpoint::sharded(
            &cfg,
            Counters::default(),
            11,
            Box::new(media.clone()),
            Shard::SOLE,
            flood,
        )
        .with_inbound(inbound_targets(&cfg).expect("the shipped prompts load"))
        .with_clock(Arc::new(move || utc));
        Harness {
            ep,
            media,
            now: Instant::now(),
            events: Vec::new(),
        }
    }

    fn settle(&mut self) -> Vec<Message> {
        let out: Vec<Message> = std::iter::from_fn(|| self.ep.poll_transmit())
            .collect::<Vec<Transmit>>()
            .iter()
            .map(reparse)
            .collect();
        self.events
            .extend(std::iter::from_fn(|| self.ep.poll_call_event()));
        out
    }

    /// Launches a callback; the customer's leg goes to `customer` peers (in turn).
    fn launch(&mut self, first: FirstParty, customer: &[&str], uui: Option<&str>) -> Vec<Message> {
        let mut c = Hop::literal("sip:127.0.0.1:5080", None).unwrap();
        c.peers = customer
            .iter()
            .map(|a| Peer::udp(a.parse().unwrap()))
            .collect();
        let a = Hop::literal("sip:+15550009999@127.0.0.1:5090", None).unwrap();
        self.dial(first, c, Some(a), uui)
    }

    /// Launches a customer-first callback through a trunk that holds credentials (the
    /// runtime would resolve the trunk; here the hop carries them directly).
    fn launch_with_credentials(&mut self) -> Vec<Message> {
        let mut c = Hop::literal("sip:127.0.0.1:5080", None).unwrap();
        c.credentials = Some(Arc::new(holdless::sip::digest::Credentials::new(
            "holdless", "s3cret",
        )));
        self.dial(FirstParty::Customer, c, None, None)
    }

    fn dial(
        &mut self,
        first: FirstParty,
        customer: Hop,
        agent: Option<Hop>,
        uui: Option<&str>,
    ) -> Vec<Message> {
        let launch = Launch {
            callback_id: "cb1".into(),
            attempt: 1,
            organization: "demo".into(),
            call_target: "billing".into(),
            number: "+15551234567".into(),
            first_party: first,
            contact_center: Some("sip:+15550009999@127.0.0.1:5090".into()),
            caller_id: Some("+15550001000".into()),
            user_data: Default::default(),
            sip_headers: uui
                .map(|v| vec![("User-to-User".to_owned(), v.to_owned())])
                .unwrap_or_default(),
            inbound: None,
            node: None,
        };
        self.ep.dial(self.now, launch, Some(customer), agent);
        self.settle()
    }

    fn send(&mut self, from: &str, msg: &str) -> Vec<Message> {
        self.ep
            .handle_message(self.now, msg.as_bytes(), Peer::udp(from.parse().unwrap()));
        self.settle()
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

    fn media_id(&self) -> MediaId {
        self.media.plays.lock().unwrap()[0].0
    }

    fn plays(&self) -> usize {
        self.media.plays.lock().unwrap().len()
    }

    fn digit(&mut self, c: char) -> Vec<Message> {
        let ev = MediaEvent::Digit {
            id: self.media_id(),
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
            id: self.media_id(),
            side: Side::Caller,
        };
        self.ep.local_media(self.now, ev);
        self.settle()
    }

    /// The attempt reported (exactly one).
    fn attempt(&self) -> (AttemptResult, AttemptReport) {
        let ended: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| match e {
                CallEvent::AttemptEnded { result, report, .. } => {
                    Some((*result, (**report).clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(ended.len(), 1, "one attempt ends: {:?}", self.events);
        ended[0].clone()
    }

    fn agent_connected(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, CallEvent::AgentConnected { .. }))
            .count()
    }

    /// Answers `invite` with 200 and SDP from `ip:port`, sends the ACK holdless expects.
    fn answer(&mut self, from: &str, invite: &Message, media_port: u16) -> Vec<Message> {
        let ip = from.split(':').next().unwrap();
        let body = sdp(ip, media_port, "8 101");
        self.send(from, &respond(invite, 200, Some(&body), from, "far1"))
    }
}

fn invite(out: &[Message]) -> &Message {
    request(out, Method::Invite).expect("an INVITE")
}

fn ack_in(out: &[Message]) -> bool {
    request(out, Method::Ack).is_some()
}

/// A BYE from the far end of the dialog `invite` made (answered with tag `far1`).
fn bye_from(invite: &Message, from: &str) -> String {
    let to = invite.get(Name::From).unwrap();
    let me = format!("{};tag=far1", invite.get(Name::To).unwrap());
    format!(
        "BYE sip:holdless@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKbye{}\r\n\
         Max-Forwards: 70\r\nFrom: {me}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
        from.len(),
        invite.call_id().unwrap()
    )
}

#[test]
fn customer_first_calls_the_customer_then_on_1_the_contact_center_with_the_metadata_and_bridges() {
    let mut h = Harness::new("");
    let out = h.launch(
        FirstParty::Customer,
        &[CUSTOMER],
        Some("414243;encoding=hex"),
    );
    let inv = invite(&out).clone();
    assert_eq!(inv.request_uri(), Some("sip:+15551234567@127.0.0.1:5080"));
    assert!(inv.get(Name::From).unwrap().contains("sip:+15550001000@"));
    assert!(inv
        .get_other("P-Asserted-Identity")
        .unwrap()
        .contains("+15550001000"));
    assert!(
        inv.get_other("X-User-To-User").is_none(),
        "no metadata to the customer"
    );
    let out = h.answer(CUSTOMER, &inv, 40000);
    assert!(ack_in(&out));
    assert_eq!(h.plays(), 1, "the callback prompt plays");
    h.now += Duration::from_secs(3);
    let out = h.digit('1');
    let agent = invite(&out).clone();
    assert_eq!(agent.request_uri(), Some("sip:+15550009999@127.0.0.1:5090"));
    assert_eq!(
        agent.get_other("X-User-To-User"),
        Some("ABC"),
        "decoded, sent raw"
    );
    assert!(agent.get(Name::From).unwrap().contains("sip:+15551234567@"));
    assert_eq!(h.plays(), 2, "holding prompt while the agent rings");
    let out = h.answer(AGENT, &agent, 41000);
    assert!(ack_in(&out));
    assert_eq!(h.agent_connected(), 1);
    h.now += Duration::from_secs(60);
    let out = h.send(AGENT, &bye_from(&agent, AGENT));
    let bye = request(&out, Method::Bye).expect("BYE to the customer");
    assert_eq!(bye.call_id(), inv.call_id());
    h.send(CUSTOMER, &respond(bye, 200, None, CUSTOMER, "far1"));
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::Completed);
    assert_eq!((r.customer, r.agent), (LegEnd::Answered, LegEnd::Answered));
    assert_eq!(r.customer_delay, Some(3));
    assert_eq!(r.talk, Some(60));
    assert_eq!(r.hung_up_first, Some(Party::Agent));
    h.advance(Duration::from_secs(40)); // the transactions' wait states (Timers J, K)
    assert!(h.ep.call_tables_empty(), "nothing of the call is left");
}

#[test]
fn agent_first_whispers_then_calls_the_customer_on_1() {
    let mut h = Harness::new("");
    let out = h.launch(FirstParty::Agent, &[CUSTOMER], None);
    let agent = invite(&out).clone();
    assert_eq!(agent.request_uri(), Some("sip:+15550009999@127.0.0.1:5090"));
    h.answer(AGENT, &agent, 41000);
    assert_eq!(h.agent_connected(), 1, "the agent answered");
    assert_eq!(h.plays(), 1, "the whisper");
    h.now += Duration::from_secs(2);
    let out = h.digit('1');
    let cust = invite(&out).clone();
    assert_eq!(cust.request_uri(), Some("sip:+15551234567@127.0.0.1:5080"));
    h.now += Duration::from_secs(5);
    h.answer(CUSTOMER, &cust, 40000);
    h.now += Duration::from_secs(30);
    let out = h.send(CUSTOMER, &bye_from(&cust, CUSTOMER));
    let bye = request(&out, Method::Bye).expect("BYE to the agent");
    h.send(AGENT, &respond(bye, 200, None, AGENT, "far1"));
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::Completed);
    assert_eq!(r.first_party, FirstParty::Agent);
    assert_eq!(r.customer_wait, Some(5));
    assert_eq!(r.agent_wait, Some(7));
    assert_eq!(r.hung_up_first, Some(Party::Customer));
}

#[test]
fn a_busy_customer_ends_the_attempt_as_busy_without_calling_the_agent() {
    let mut h = Harness::new("");
    let out = h.launch(FirstParty::Customer, &[CUSTOMER], None);
    let out = h.send(
        CUSTOMER,
        &respond(invite(&out), 486, None, CUSTOMER, "far1"),
    );
    assert!(request(&out, Method::Invite).is_none());
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::Busy);
    assert_eq!((r.customer, r.agent), (LegEnd::Busy, LegEnd::NotPlaced));
}

#[test]
fn an_unanswered_customer_is_cancelled_at_the_ring_timeout() {
    let mut h = Harness::new("");
    let out = h.launch(FirstParty::Customer, &[CUSTOMER], None);
    let inv = invite(&out).clone();
    h.send(CUSTOMER, &respond(&inv, 180, None, CUSTOMER, "far1"));
    let out = h.advance(Duration::from_secs(21));
    let cancel = request(&out, Method::Cancel).expect("CANCEL at the ring timeout");
    h.send(CUSTOMER, &respond(cancel, 200, None, CUSTOMER, "far1"));
    h.send(CUSTOMER, &respond(&inv, 487, None, CUSTOMER, "far1"));
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::NoAnswer, "{:?}", h.events);
    assert_eq!(r.customer, LegEnd::NoAnswer);
}

#[test]
fn no_key_after_the_prompt_leaves_the_voicemail_prompt_then_hangs_up() {
    let mut h = Harness::new("leave_voicemail = true");
    let out = h.launch(FirstParty::Customer, &[CUSTOMER], None);
    let inv = invite(&out).clone();
    h.answer(CUSTOMER, &inv, 40000);
    h.prompt_done();
    assert!(
        h.advance(Duration::from_secs(4)).is_empty(),
        "still waiting for a key"
    );
    h.advance(Duration::from_secs(2));
    assert_eq!(h.plays(), 2, "the voicemail prompt");
    let out = h.prompt_done();
    let bye = request(&out, Method::Bye).expect("BYE after the voicemail prompt");
    h.send(CUSTOMER, &respond(bye, 200, None, CUSTOMER, "far1"));
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::Voicemail);
    assert!(r.left_voicemail);
    assert_eq!(r.hung_up_first, Some(Party::System));
}

#[test]
fn pressing_2_reschedules_with_the_configured_delay() {
    let mut h = Harness::new("reschedule_delay_secs = 600");
    let out = h.launch(FirstParty::Customer, &[CUSTOMER], None);
    let inv = invite(&out).clone();
    h.answer(CUSTOMER, &inv, 40000);
    h.digit('2');
    let out = h.prompt_done();
    let bye = request(&out, Method::Bye).expect("BYE after goodbye");
    h.send(CUSTOMER, &respond(bye, 200, None, CUSTOMER, "far1"));
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::Rescheduled);
    assert_eq!(r.rescheduled, Some(600));
}

#[test]
fn an_agent_leg_past_the_priority_queue_timeout_is_cancelled_and_the_customer_told() {
    let mut h = Harness::new("");
    let out = h.launch(FirstParty::Customer, &[CUSTOMER], None);
    let inv = invite(&out).clone();
    h.answer(CUSTOMER, &inv, 40000);
    let out = h.digit('1');
    let agent = invite(&out).clone();
    h.send(AGENT, &respond(&agent, 180, None, AGENT, "far1"));
    let out = h.advance(Duration::from_secs(41));
    let cancel = request(&out, Method::Cancel).expect("CANCEL to the agent leg");
    h.send(AGENT, &respond(cancel, 200, None, AGENT, "far1"));
    h.send(AGENT, &respond(&agent, 487, None, AGENT, "far1"));
    assert_eq!(h.plays(), 3, "prompt, holding, agent unavailable");
    let out = h.prompt_done();
    let bye = request(&out, Method::Bye).expect("BYE to the customer");
    h.send(CUSTOMER, &respond(bye, 200, None, CUSTOMER, "far1"));
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::Error);
    assert!(r.priority_queue_timed_out);
    assert_eq!(r.agent, LegEnd::NoAnswer);
}

#[test]
fn a_503_sends_the_invite_to_the_trunks_next_address() {
    let mut h = Harness::new("");
    let out = h.launch(FirstParty::Customer, &[CUSTOMER, CUSTOMER_2], None);
    let first = invite(&out).clone();
    let out = h.send(CUSTOMER, &respond(&first, 503, None, CUSTOMER, "far1"));
    let again = invite(&out).clone();
    assert_eq!(again.call_id(), first.call_id());
    assert_ne!(
        again.get(Name::Via),
        first.get(Name::Via),
        "a new transaction"
    );
    // Where it went: the only way to tell is that the answer from there is taken.
    let out = h.answer(CUSTOMER_2, &again, 40000);
    assert!(ack_in(&out));
    assert_eq!(h.plays(), 1, "answered at the second address");
}

#[test]
fn a_trunk_challenge_is_answered_with_the_trunks_credentials() {
    let mut h = Harness::new(
        "customer_trunk = \"carrier\"\n[[trunks]]\nid = \"carrier\"\nuri = \"sip:127.0.0.1:5080\"\nusername = \"holdless\"\npassword = \"s3cret\"\n",
    );
    let out = h.launch_with_credentials();
    let first = invite(&out).clone();
    let mut challenge = respond(&first, 407, None, CUSTOMER, "far0");
    challenge = challenge.replace(
        "Content-Length: 0",
        "Proxy-Authenticate: Digest realm=\"trunk.test\", nonce=\"abc\", qop=\"auth\"\r\nContent-Length: 0",
    );
    let out = h.send(CUSTOMER, &challenge);
    let again = invite(&out).clone();
    let auth = again
        .get_other("Proxy-Authorization")
        .expect("credentials on the second INVITE");
    assert!(
        auth.contains("username=\"holdless\"") && auth.contains("nc=00000001"),
        "{auth}"
    );
    assert!(!auth.contains("s3cret"));
    // A second challenge with the same nonce: the credentials are refused; the leg fails.
    let out = h.send(
        CUSTOMER,
        &challenge
            .replace("far0", "far2")
            .replace(first.get(Name::Via).unwrap(), again.get(Name::Via).unwrap())
            .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE"),
    );
    assert!(request(&out, Method::Invite).is_none(), "no third INVITE");
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::Error);
    assert_eq!(r.customer, LegEnd::Error);
}

#[test]
fn a_challenged_bye_is_sent_again_with_credentials() {
    let mut h = Harness::new("");
    let out = h.launch_with_credentials();
    let inv = invite(&out).clone();
    h.answer(CUSTOMER, &inv, 40000);
    h.prompt_done();
    // No key: holdless hangs up; the trunk challenges the BYE.
    let out = h.advance(Duration::from_secs(6));
    let bye = request(&out, Method::Bye).expect("BYE").clone();
    assert!(
        bye.get_other("Proxy-Authorization").is_none(),
        "nothing to answer yet"
    );
    let challenge = respond(&bye, 407, None, CUSTOMER, "far1").replace(
        "Content-Length: 0",
        "Proxy-Authenticate: Digest realm=\"trunk.test\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"\r\nContent-Length: 0",
    );
    let out = h.send(CUSTOMER, &challenge);
    let again = request(&out, Method::Bye).expect("the BYE again").clone();
    let auth = again
        .get_other("Proxy-Authorization")
        .expect("with credentials");
    assert!(
        auth.contains("algorithm=SHA-256") && auth.contains("nc=00000001"),
        "{auth}"
    );
    assert_eq!(
        again
            .get(Name::CSeq)
            .map(|c| c.split(' ').next().unwrap().parse::<u32>().unwrap()),
        bye.get(Name::CSeq)
            .map(|c| c.split(' ').next().unwrap().parse::<u32>().unwrap() + 1)
    );
    h.send(CUSTOMER, &respond(&again, 200, None, CUSTOMER, "far1"));
    let (result, _) = h.attempt();
    assert_eq!(result, AttemptResult::Voicemail);
}

#[test]
fn agent_first_with_a_busy_customer_tells_the_agent_and_ends_as_busy() {
    let mut h = Harness::new("whisper = false");
    let out = h.launch(FirstParty::Agent, &[CUSTOMER], None);
    let agent = invite(&out).clone();
    let out = h.answer(AGENT, &agent, 41000);
    let cust = invite(&out).clone();
    assert_eq!(
        h.plays(),
        1,
        "no whisper: the customer is dialled at once, holding plays"
    );
    h.send(CUSTOMER, &respond(&cust, 486, None, CUSTOMER, "far1"));
    assert_eq!(h.plays(), 2, "the customer-unreachable prompt to the agent");
    let out = h.prompt_done();
    let bye = request(&out, Method::Bye).expect("BYE to the agent");
    assert_eq!(bye.call_id(), agent.call_id());
    h.send(AGENT, &respond(bye, 200, None, AGENT, "far1"));
    let (result, r) = h.attempt();
    assert_eq!(
        result,
        AttemptResult::Busy,
        "the customer's outcome decides the retry"
    );
    assert_eq!((r.agent, r.customer), (LegEnd::Answered, LegEnd::Busy));
}

#[test]
fn an_agent_who_does_not_accept_the_whisper_ends_the_attempt_as_an_error() {
    let mut h = Harness::new("");
    let out = h.launch(FirstParty::Agent, &[CUSTOMER], None);
    let agent = invite(&out).clone();
    h.answer(AGENT, &agent, 41000);
    h.prompt_done();
    let out = h.advance(Duration::from_secs(6));
    let bye = request(&out, Method::Bye).expect("BYE to the agent");
    assert!(
        request(&out, Method::Invite).is_none(),
        "the customer is never called"
    );
    h.send(AGENT, &respond(bye, 200, None, AGENT, "far1"));
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::Error);
    assert_eq!(r.customer, LegEnd::NotPlaced);
}

#[test]
fn a_refused_agent_leg_gets_the_customer_the_apology_and_a_declining_customer_is_rejected() {
    let mut h = Harness::new("");
    let out = h.launch(FirstParty::Customer, &[CUSTOMER], None);
    let inv = invite(&out).clone();
    h.answer(CUSTOMER, &inv, 40000);
    let out = h.digit('1');
    let agent = invite(&out).clone();
    h.send(AGENT, &respond(&agent, 486, None, AGENT, "far1"));
    let out = h.prompt_done();
    let bye = request(&out, Method::Bye).expect("BYE to the customer");
    h.send(CUSTOMER, &respond(bye, 200, None, CUSTOMER, "far1"));
    let (result, r) = h.attempt();
    assert_eq!(result, AttemptResult::Error);
    assert_eq!(r.agent, LegEnd::Busy);
    assert!(!r.priority_queue_timed_out);

    let mut h = Harness::new("");
    let out = h.launch(FirstParty::Customer, &[CUSTOMER], None);
    h.send(
        CUSTOMER,
        &respond(invite(&out), 603, None, CUSTOMER, "far1"),
    );
    let (result, r) = h.attempt();
    assert_eq!(
        result,
        AttemptResult::Error,
        "a decline is retried as an error"
    );
    assert_eq!(r.customer, LegEnd::Rejected);
}

#[test]
fn a_challenged_session_refresh_is_sent_again_with_credentials() {
    let mut h = Harness::new("");
    let out = h.launch_with_credentials();
    let inv = invite(&out).clone();
    // The customer answers with a 90 s session that holdless refreshes (refresher=uac).
    let body = sdp("127.0.0.1", 40000, "8 101");
    let ok = respond(&inv, 200, Some(&body), CUSTOMER, "far1").replace(
        "Content-Type",
        "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\nContent-Type",
    );
    h.send(CUSTOMER, &ok);
    let mut refresh = None;
    for _ in 0..20 {
        let out = h.advance(Duration::from_secs(5));
        if let Some(r) = request(&out, Method::Invite) {
            refresh = Some(r.clone());
            break;
        }
    }
    let refresh = refresh.expect("a refresh within 100 s of a 90 s session");
    assert!(refresh.get_other("Proxy-Authorization").is_none());
    let challenge = respond(&refresh, 407, None, CUSTOMER, "far1").replace(
        "Content-Length: 0",
        "Proxy-Authenticate: Digest realm=\"trunk.test\", nonce=\"r1\", qop=\"auth\"\r\nContent-Length: 0",
    );
    let out = h.send(CUSTOMER, &challenge);
    let again = request(&out, Method::Invite)
        .expect("the refresh again")
        .clone();
    assert!(again.get_other("Proxy-Authorization").is_some(), "answered");
    assert_ne!(again.get(Name::CSeq), refresh.get(Name::CSeq));
    // A second challenge of the same refresh is not answered: the session is given up.
    let out = h.send(
        CUSTOMER,
        &respond(&again, 407, None, CUSTOMER, "far1").replace(
            "Content-Length: 0",
            "Proxy-Authenticate: Digest realm=\"trunk.test\", nonce=\"r2\", qop=\"auth\"\r\nContent-Length: 0",
        ),
    );
    assert!(request(&out, Method::Invite).is_none());
    assert!(request(&out, Method::Bye).is_some(), "the call ends");
}
