//! The caller's conversation as a sans-IO state machine: fed prompt ends, digits, timeouts,
//! the registration's result and the caller's hangup, each with `now`; it answers with
//! [`Action`]s (play, stop, register, bridge, hang up) polled by the call flow, and a
//! deadline for [`Menu::handle_timeout`].
//!
//! Rules the flow relies on:
//! - A `Play` replaces whatever was playing; the player reports [`Menu::prompt_finished`]
//!   only for a prompt that played to its end (not one stopped by `StopPlayback`).
//! - Keys: main menu 1 own number, 2 another number, 3 a slot, 0 / `*` keep holding (each
//!   only where offered); a number is digits then `#` (`*` or a letter there is invalid and
//!   starts the number over); read-back 1 confirms, 2 keys it again; slots 1..=3; after a
//!   refusal 0 / `*` keep holding.
//! - A digit during a prompt with `barge_in` stops it (`StopPlayback`) and is taken; during a
//!   prompt without barge-in (confirmation, goodbye) it is ignored.
//! - The input timeout runs from the end of a prompt, and from each key that starts no
//!   prompt (the digits of a number: a number left without `#` is taken at the timeout); an
//!   invalid key or no input plays the stage's prompt again, `menu_retries` times, then a
//!   polite goodbye and `HangUp`.
//! - Early hangup: the caller's last key press sends `Register`; a hangup before that is an
//!   early hangup and registers nothing. A hangup after it (registration in flight, or the
//!   confirmation playing) leaves the callback standing: the caller gave everything needed,
//!   and cancelling an accepted callback would race the engine. The late result is still
//!   recorded in the [`Outcome`] (`hung_up_registering`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::config::IvrSettings;
use super::plan::{quote_wait, Entry, NotOffering, Offer};
use crate::callback::engine::{Refused, Registered};
use crate::callback::model::{CallbackId, Kind, Refusal, WidgetState};
use crate::media::dtmf::Digit;
use crate::media::prompt::{names, Say};

/// Most digits accepted for another number (E.164's 15 plus an international prefix).
pub const MAX_ENTERED_DIGITS: usize = 20;

/// What kind of callback to register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterKind {
    /// As soon as possible (no appointment).
    Asap,
    /// At this offered slot (the appointment).
    Scheduled(DateTime<Utc>),
    /// The next-business-day callback offered while closed (asked without appointment; the
    /// engine waitlists it).
    NextDay,
}

/// What the flow must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play these items (replacing anything playing); `barge_in`: a digit may cut it short.
    Play {
        /// What to say.
        say: Vec<Say>,
        /// Whether a digit stops it.
        barge_in: bool,
    },
    /// Stop the prompt playing now (barge-in).
    StopPlayback,
    /// Register a callback through the engine; answer with [`Menu::registration_done`].
    Register {
        /// Another number as keyed in; `None`: the caller's own number.
        number: Option<String>,
        /// ASAP, scheduled or next-day.
        kind: RegisterKind,
    },
    /// Bridge the caller to the contact center (kept holding, or not offering).
    Bridge,
    /// Hang up (BYE).
    HangUp,
}

/// A registration the engine accepted, as the menu needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSummary {
    /// The callback's id.
    pub callback_id: CallbackId,
    /// Its kind as registered (an ASAP request may have become next-day).
    pub kind: Kind,
}

impl From<&Registered> for RegisteredSummary {
    fn from(r: &Registered) -> Self {
        RegisteredSummary {
            callback_id: r.callback.id.clone(),
            kind: r.callback.kind,
        }
    }
}

/// Why a registration did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The engine refused it under this rule.
    Refused(Refusal),
    /// The callback service could not answer (store down, overloaded, stopped).
    Unavailable,
}

impl From<&Refused> for RefusalKind {
    fn from(r: &Refused) -> Self {
        RefusalKind::Refused(r.outcome)
    }
}

impl RefusalKind {
    /// The prompt telling the caller.
    fn prompt(self) -> &'static str {
        match self {
            RefusalKind::Refused(Refusal::DuplicateCallback | Refusal::DuplicateRequest) => {
                names::DUPLICATE
            }
            RefusalKind::Refused(Refusal::InvalidNumber | Refusal::MaxTollRateExceeded) => {
                names::NUMBER_REFUSED
            }
            _ => names::REGISTRATION_FAILED,
        }
    }
}

/// One step of the caller's way through the conversation, for the call record and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The offer and the menu were played.
    Offer,
    /// The next-business-day offer and menu were played.
    NextDayOffer,
    /// `ivr = "none"`: registered without a menu.
    AtOnce,
    /// Callbacks not offered: announced, bridged or both.
    NotOffering,
    /// 1: the caller's own number.
    SameNumber,
    /// 2: another number.
    OtherNumber,
    /// The other number was keyed in and read back.
    NumberEntered,
    /// 2 at the read-back: key the number again.
    Reenter,
    /// 1 at the read-back.
    Confirmed,
    /// 3: scheduled slots read out.
    Scheduled,
    /// A slot was picked (1-based).
    Slot(u8),
    /// 0 or `*`: keep holding.
    Hold,
    /// A key that means nothing here.
    Invalid,
    /// No key within the timeout.
    NoInput,
    /// The registration was accepted.
    Registered,
    /// The registration was refused.
    Refused,
    /// The caller hung up.
    HungUp,
}

impl Step {
    /// A short stable label.
    pub fn label(self) -> String {
        match self {
            Step::Offer => "offer".into(),
            Step::NextDayOffer => "next_day_offer".into(),
            Step::AtOnce => "at_once".into(),
            Step::NotOffering => "not_offering".into(),
            Step::SameNumber => "same_number".into(),
            Step::OtherNumber => "other_number".into(),
            Step::NumberEntered => "number_entered".into(),
            Step::Reenter => "reenter".into(),
            Step::Confirmed => "confirmed".into(),
            Step::Scheduled => "scheduled".into(),
            Step::Slot(n) => format!("slot_{n}"),
            Step::Hold => "hold".into(),
            Step::Invalid => "invalid".into(),
            Step::NoInput => "no_input".into(),
            Step::Registered => "registered".into(),
            Step::Refused => "refused".into(),
            Step::HungUp => "hung_up".into(),
        }
    }
}

/// What the conversation came to: the inbound call record's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The caller pressed 0 or `*` (`choseToHold`).
    pub chose_to_hold: bool,
    /// The caller hung up before giving what a registration needs (`earlyHangup`).
    pub early_hangup: bool,
    /// The caller hung up while the registration was in flight (it stands if accepted).
    pub hung_up_registering: bool,
    /// A next-business-day callback was offered (`nextDayCallbackOffered`).
    pub next_day_offered: bool,
    /// A next-business-day callback was registered (`nextDayCallbackScheduled`).
    pub next_day_scheduled: bool,
    /// The registration was refused as a duplicate (`duplicateCallback`).
    pub duplicate: bool,
    /// Why the registration did not happen.
    pub refused: Option<RefusalKind>,
    /// The callback registered.
    pub callback_id: Option<CallbackId>,
    /// Callbacks were not offered: the widget state that said so.
    pub not_offering: Option<WidgetState>,
    /// The conversation ended in a bridge to the contact center.
    pub bridged: bool,
    /// The way taken through the menu.
    pub path: Vec<Step>,
    /// Every digit taken, in order (`*`, `#` included).
    pub digits: String,
}

impl Outcome {
    /// The path as one string, `offer>other_number>number_entered>confirmed>registered`.
    pub fn path_label(&self) -> String {
        let labels: Vec<String> = self.path.iter().map(|s| s.label()).collect();
        labels.join(">")
    }
}

/// How a last prompt ends the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    HangUp,
    Bridge,
}

/// Where the conversation is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// The main (or next-day) menu.
    Main,
    /// Keying another number (digits so far).
    EnterNumber(String),
    /// The number read back: 1 confirm, 2 again.
    ConfirmNumber(String),
    /// Slots read out: pick one.
    PickSlot,
    /// `Register` sent, waiting for its result.
    Registering,
    /// Refused: the caller may keep holding.
    Refused,
    /// A last prompt playing, then this.
    Closing(End),
    /// Bridged or hung up: nothing more.
    Done,
}

/// The caller's conversation. See the module documentation for the rules.
#[derive(Debug)]
pub struct Menu {
    offer: Offer,
    timeout: Duration,
    retries: u32,
    cap_minutes: u32,
    stage: Stage,
    /// A prompt is playing; `Some(barge_in)`.
    playing: Option<bool>,
    deadline: Option<Instant>,
    /// Invalid keys and timeouts in the current stage.
    misses: u32,
    /// `Register` was sent.
    register_sent: bool,
    hung_up: bool,
    actions: VecDeque<Action>,
    outcome: Outcome,
}

impl Menu {
    /// The conversation for a caller entering as `entry` says, started at `now` (the call is
    /// answered). `None` for [`NotOffering::Reject`]: no conversation, the flow refuses the
    /// INVITE with the status.
    pub fn new(now: Instant, entry: &Entry, settings: &IvrSettings) -> Option<Menu> {
        let _ = now;
        let offer = match entry {
            Entry::Menu(offer) => offer.clone(),
            Entry::RegisterAtOnce {
                number, can_hold, ..
            } => Offer {
                ewt_secs: None,
                next_day: false,
                slots: vec![],
                can_hold: *can_hold,
                caller_number: Some(number.clone()),
            },
            Entry::NotOffering { then, .. } => {
                if let NotOffering::Reject(_) = then {
                    return None;
                }
                Offer {
                    ewt_secs: None,
                    next_day: false,
                    slots: vec![],
                    can_hold: false,
                    caller_number: None,
                }
            }
        };
        let mut m = Menu {
            offer,
            timeout: settings.input_timeout,
            retries: settings.menu_retries,
            cap_minutes: settings.max_quoted_minutes,
            stage: Stage::Main,
            playing: None,
            deadline: None,
            misses: 0,
            register_sent: false,
            hung_up: false,
            actions: VecDeque::new(),
            outcome: Outcome::default(),
        };
        match entry {
            Entry::Menu(offer) => {
                let next_day = offer.next_day;
                m.outcome.next_day_offered = next_day;
                m.step(if next_day {
                    Step::NextDayOffer
                } else {
                    Step::Offer
                });
                let mut say = vec![Say::Prompt(names::WELCOME)];
                if let (false, Some(secs)) = (next_day, offer.ewt_secs) {
                    say.extend(quote_wait(secs, m.cap_minutes));
                }
                say.extend(m.menu_lines());
                m.play(say, true);
            }
            Entry::RegisterAtOnce { next_day, .. } => {
                m.outcome.next_day_offered = *next_day;
                m.step(Step::AtOnce);
                let kind = if *next_day {
                    RegisterKind::NextDay
                } else {
                    RegisterKind::Asap
                };
                m.register(None, kind);
            }
            Entry::NotOffering { reason, then } => {
                m.outcome.not_offering = Some(*reason);
                m.step(Step::NotOffering);
                match then {
                    NotOffering::Bridge { announce } if announce.is_empty() => m.bridge(),
                    NotOffering::Bridge { announce } => m.close(announce.clone(), End::Bridge),
                    NotOffering::Announce(prompt) => {
                        m.close(vec![Say::Prompt(prompt)], End::HangUp)
                    }
                    NotOffering::Reject(_) => {}
                }
            }
        }
        Some(m)
    }

    /// The next action for the flow.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`Menu::handle_timeout`] (waiting for a key), if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// What the conversation came to so far (final once [`Menu::is_done`]).
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Nothing more will happen: bridged, hung up, or the caller gone with no registration
    /// in flight.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// The prompt last played ran to its end.
    pub fn prompt_finished(&mut self, now: Instant) {
        if self.playing.take().is_none() || self.hung_up {
            return;
        }
        match self.stage {
            Stage::Closing(End::HangUp) => self.finish(Action::HangUp),
            Stage::Closing(End::Bridge) => self.bridge(),
            Stage::Registering | Stage::Done => {}
            Stage::Main
            | Stage::EnterNumber(_)
            | Stage::ConfirmNumber(_)
            | Stage::PickSlot
            | Stage::Refused => self.deadline = Some(now + self.timeout),
        }
    }

    /// A DTMF digit from the caller.
    pub fn handle_digit(&mut self, now: Instant, digit: Digit) {
        if self.hung_up || !self.listening() {
            return;
        }
        match self.playing {
            Some(true) => {
                self.playing = None;
                self.actions.push_back(Action::StopPlayback);
            }
            Some(false) => return,
            None => {}
        }
        self.deadline = None;
        self.outcome.digits.push(digit.as_char());
        let hold = matches!(digit, Digit::Num(0) | Digit::Star) && self.offer.can_hold;
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Main => {
                self.stage = Stage::Main;
                self.main_choice(digit, hold);
            }
            Stage::EnterNumber(mut digits) => match digit {
                Digit::Num(n) if digits.len() < MAX_ENTERED_DIGITS => {
                    digits.push((b'0' + n) as char);
                    self.stage = Stage::EnterNumber(digits);
                }
                Digit::Pound if !digits.is_empty() => self.read_back(digits),
                _ => {
                    self.stage = Stage::EnterNumber(String::new());
                    self.invalid();
                }
            },
            Stage::ConfirmNumber(number) => match digit {
                Digit::Num(1) => {
                    self.step(Step::Confirmed);
                    let kind = self.asap_kind();
                    self.register(Some(number), kind);
                }
                Digit::Num(2) => {
                    self.step(Step::Reenter);
                    self.enter_number();
                }
                _ => {
                    self.stage = Stage::ConfirmNumber(number);
                    self.invalid();
                }
            },
            Stage::PickSlot => {
                self.stage = Stage::PickSlot;
                let picked = match digit {
                    Digit::Num(n) if n >= 1 => self
                        .offer
                        .slots
                        .get(usize::from(n) - 1)
                        .map(|s| (n, s.start)),
                    _ => None,
                };
                match picked {
                    Some((n, start)) => {
                        self.step(Step::Slot(n));
                        self.register(None, RegisterKind::Scheduled(start));
                    }
                    None if hold => self.hold(),
                    None => self.invalid(),
                }
            }
            Stage::Refused => {
                self.stage = Stage::Refused;
                if hold {
                    self.hold();
                } else {
                    self.invalid();
                }
            }
            other => self.stage = other,
        }
        // A key that started no prompt (a digit of a number) waits for the next one.
        if self.playing.is_none() && self.listening() {
            self.deadline = Some(now + self.timeout);
        }
    }

    /// Time passed; acts if the input deadline is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| d > now) || self.hung_up {
            return;
        }
        self.deadline = None;
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::EnterNumber(digits) if !digits.is_empty() => self.read_back(digits),
            Stage::Refused => {
                self.stage = Stage::Refused;
                self.step(Step::NoInput);
                self.close(vec![Say::Prompt(names::GOODBYE)], End::HangUp);
            }
            other => {
                self.stage = other;
                self.step(Step::NoInput);
                self.misses += 1;
                if self.misses > self.retries {
                    self.close(vec![Say::Prompt(names::NO_INPUT_GOODBYE)], End::HangUp);
                } else {
                    let say = self.stage_prompt();
                    self.play(say, true);
                }
            }
        }
    }

    /// The result of the `Register` action.
    pub fn registration_done(
        &mut self,
        now: Instant,
        result: Result<RegisteredSummary, RefusalKind>,
    ) {
        let _ = now;
        if self.stage != Stage::Registering {
            return;
        }
        match result {
            Ok(r) => {
                self.step(Step::Registered);
                self.outcome.callback_id = Some(r.callback_id);
                self.outcome.next_day_scheduled = r.kind == Kind::NextDay;
                if self.hung_up {
                    self.stage = Stage::Done;
                    return;
                }
                let prompt = match r.kind {
                    Kind::Asap => names::REGISTERED,
                    Kind::Scheduled => names::REGISTERED_SCHEDULED,
                    Kind::NextDay => names::REGISTERED_NEXT_DAY,
                };
                self.close(vec![Say::Prompt(prompt)], End::HangUp);
            }
            Err(why) => {
                self.step(Step::Refused);
                self.outcome.refused = Some(why);
                self.outcome.duplicate = why == RefusalKind::Refused(Refusal::DuplicateCallback);
                if self.hung_up {
                    self.stage = Stage::Done;
                    return;
                }
                if self.offer.can_hold {
                    self.stage = Stage::Refused;
                    self.misses = 0;
                    self.play(
                        vec![Say::Prompt(why.prompt()), Say::Prompt(names::MENU_HOLD)],
                        true,
                    );
                } else {
                    self.close(
                        vec![Say::Prompt(why.prompt()), Say::Prompt(names::GOODBYE)],
                        End::HangUp,
                    );
                }
            }
        }
    }

    /// The caller hung up (BYE or CANCEL). Nothing more is played or sent.
    pub fn hangup(&mut self, now: Instant) {
        let _ = now;
        if self.hung_up || self.stage == Stage::Done {
            return;
        }
        self.hung_up = true;
        self.step(Step::HungUp);
        self.actions.clear();
        self.playing = None;
        self.deadline = None;
        match self.stage {
            Stage::Registering => self.outcome.hung_up_registering = true,
            Stage::Main | Stage::EnterNumber(_) | Stage::ConfirmNumber(_) | Stage::PickSlot => {
                self.outcome.early_hangup = !self.register_sent;
                self.stage = Stage::Done;
            }
            _ => self.stage = Stage::Done,
        }
    }

    // ------------------------------------------------------------------ internals

    /// Whether digits are taken in this stage.
    fn listening(&self) -> bool {
        matches!(
            self.stage,
            Stage::Main
                | Stage::EnterNumber(_)
                | Stage::ConfirmNumber(_)
                | Stage::PickSlot
                | Stage::Refused
        )
    }

    fn main_choice(&mut self, digit: Digit, hold: bool) {
        let own = self.offer.caller_number.is_some();
        match digit {
            Digit::Num(1) if own => {
                self.step(Step::SameNumber);
                let kind = self.asap_kind();
                self.register(None, kind);
            }
            Digit::Num(2) => {
                self.step(Step::OtherNumber);
                self.enter_number();
            }
            Digit::Num(3) if !self.offer.slots.is_empty() => {
                self.step(Step::Scheduled);
                self.stage = Stage::PickSlot;
                self.misses = 0;
                let say = self.slot_lines();
                self.play(say, true);
            }
            _ if hold => self.hold(),
            _ => self.invalid(),
        }
    }

    fn asap_kind(&self) -> RegisterKind {
        if self.offer.next_day {
            RegisterKind::NextDay
        } else {
            RegisterKind::Asap
        }
    }

    fn enter_number(&mut self) {
        self.stage = Stage::EnterNumber(String::new());
        self.misses = 0;
        self.play(vec![Say::Prompt(names::ENTER_NUMBER)], true);
    }

    fn read_back(&mut self, number: String) {
        self.step(Step::NumberEntered);
        self.misses = 0;
        let say = read_back_lines(&number);
        self.stage = Stage::ConfirmNumber(number);
        self.play(say, true);
    }

    fn register(&mut self, number: Option<String>, kind: RegisterKind) {
        self.stage = Stage::Registering;
        self.register_sent = true;
        self.actions.push_back(Action::Register { number, kind });
    }

    fn hold(&mut self) {
        self.step(Step::Hold);
        self.outcome.chose_to_hold = true;
        self.bridge();
    }

    fn bridge(&mut self) {
        self.outcome.bridged = true;
        self.finish(Action::Bridge);
    }

    fn finish(&mut self, action: Action) {
        self.stage = Stage::Done;
        self.deadline = None;
        self.actions.push_back(action);
    }

    fn invalid(&mut self) {
        self.step(Step::Invalid);
        self.misses += 1;
        if self.misses > self.retries {
            self.close(
                vec![Say::Prompt(names::INVALID), Say::Prompt(names::GOODBYE)],
                End::HangUp,
            );
        } else {
            let mut say = vec![Say::Prompt(names::INVALID)];
            say.extend(self.stage_prompt());
            self.play(say, true);
        }
    }

    /// A last prompt (no barge-in), then `end`.
    fn close(&mut self, say: Vec<Say>, end: End) {
        self.stage = Stage::Closing(end);
        self.deadline = None;
        self.play(say, false);
    }

    fn play(&mut self, say: Vec<Say>, barge_in: bool) {
        self.playing = Some(barge_in);
        self.deadline = None;
        self.actions.push_back(Action::Play { say, barge_in });
    }

    fn step(&mut self, step: Step) {
        self.outcome.path.push(step);
    }

    /// What the current stage says when played again.
    fn stage_prompt(&self) -> Vec<Say> {
        match &self.stage {
            Stage::Main => self.menu_lines(),
            Stage::EnterNumber(_) => vec![Say::Prompt(names::ENTER_NUMBER)],
            Stage::ConfirmNumber(n) => read_back_lines(n),
            Stage::PickSlot => self.slot_lines(),
            Stage::Refused => vec![Say::Prompt(names::MENU_HOLD)],
            Stage::Registering | Stage::Closing(_) | Stage::Done => vec![],
        }
    }

    /// The menu's lines, only for what is offered.
    fn menu_lines(&self) -> Vec<Say> {
        let o = &self.offer;
        let mut say = Vec::new();
        if o.caller_number.is_some() {
            say.push(Say::Prompt(if o.next_day {
                names::MENU_NEXT_DAY
            } else {
                names::MENU_SAME_NUMBER
            }));
        }
        say.push(Say::Prompt(names::MENU_OTHER_NUMBER));
        if !o.slots.is_empty() {
            say.push(Say::Prompt(names::MENU_SCHEDULED));
        }
        if o.can_hold {
            say.push(Say::Prompt(names::MENU_HOLD));
        }
        say
    }

    /// "The next available times are: for <day> at <time> press N, …".
    fn slot_lines(&self) -> Vec<Say> {
        let mut say = vec![Say::Prompt(names::SLOTS_INTRO)];
        for (i, s) in self.offer.slots.iter().enumerate() {
            say.extend([
                Say::Prompt(names::FOR),
                Say::Day {
                    offset: s.day_offset,
                    weekday: s.weekday,
                },
                Say::Prompt(names::AT),
                Say::Time {
                    hour: s.hour,
                    minute: s.minute,
                },
                Say::Prompt(names::PRESS),
                Say::Number(i as u32 + 1),
            ]);
        }
        if self.offer.can_hold {
            say.push(Say::Prompt(names::MENU_HOLD));
        }
        say
    }
}

/// "You entered 5 5 5 …. If this is correct, press 1. To enter it again, press 2."
fn read_back_lines(number: &str) -> Vec<Say> {
    vec![
        Say::Prompt(names::YOU_ENTERED),
        Say::Digits(number.to_owned()),
        Say::Prompt(names::CONFIRM_NUMBER),
    ]
}
