//! Prompts: what the IVR says, as a list of [`Say`] items the prompt set turns into audio.
//! The IVR speaks in [`Say`]; the prompt set (loaded from a folder of WAV files, one file per
//! [`names`] entry) renders it; the player sends it as RTP.
//!
//! - [`wav`] reads one WAV file (8 kHz mono 16-bit PCM, µ-law or A-law) into linear samples.
//! - [`set`] loads the whole folder once and keeps every clip encoded in both G.711 laws.
//! - [`speak`] turns numbers, digits, times and days into clip names.
//! - [`player`] sends a rendered [`Clip`] as paced 20 ms RTP frames (sans-IO).

pub mod player;
pub mod set;
pub mod speak;
pub mod wav;

pub use player::{Player, PlayerEvent, RtpFrame, StreamState};
pub use set::{Clip, Law, PromptError, PromptSet};
pub use wav::WavError;

/// One thing to say. The IVR builds a sentence from these; the prompt set maps each to one or
/// more recorded clips (numbers and times are spoken from word clips).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Say {
    /// A recorded prompt by its file stem (one of [`names`]).
    Prompt(&'static str),
    /// A whole number read as words ("twenty three").
    Number(u32),
    /// A digit string read digit by digit ("five five five...", `+` skipped).
    Digits(String),
    /// A clock time read as words ("ten thirty a m"), 24-hour input.
    Time {
        /// 0–23.
        hour: u8,
        /// 0–59.
        minute: u8,
    },
    /// A day relative to today: 0 "today", 1 "tomorrow", else the weekday name.
    Day {
        /// Days from today.
        offset: u8,
        /// The weekday, 0 = Monday, used when `offset` > 1.
        weekday: u8,
    },
    /// Silence of this many milliseconds.
    Pause(u32),
}

/// The file stems of the default prompt set (`configs/prompts/<name>.wav`). A prompt folder
/// must hold every one of them.
pub mod names {
    /// "Thank you for calling."
    pub const WELCOME: &str = "welcome";
    /// "The current wait for a call back is about"
    pub const WAIT_IS_ABOUT: &str = "wait_is_about";
    /// "more than"
    pub const MORE_THAN: &str = "more_than";
    /// "minute"
    pub const MINUTE: &str = "minute";
    /// "minutes"
    pub const MINUTES: &str = "minutes";
    /// "To be called back at the number you are calling from, press 1."
    pub const MENU_SAME_NUMBER: &str = "menu_same_number";
    /// "To be called back at another number, press 2."
    pub const MENU_OTHER_NUMBER: &str = "menu_other_number";
    /// "To schedule a call back at a later time, press 3."
    pub const MENU_SCHEDULED: &str = "menu_scheduled";
    /// "To keep holding, press 0."
    pub const MENU_HOLD: &str = "menu_hold";
    /// "We are closed now. To be called back on the next business day, press 1."
    pub const MENU_NEXT_DAY: &str = "menu_next_day";
    /// "Please enter the number to call you back at, followed by the pound key."
    pub const ENTER_NUMBER: &str = "enter_number";
    /// "You entered"
    pub const YOU_ENTERED: &str = "you_entered";
    /// "If this is correct, press 1. To enter it again, press 2."
    pub const CONFIRM_NUMBER: &str = "confirm_number";
    /// "The next available times are"
    pub const SLOTS_INTRO: &str = "slots_intro";
    /// "For"
    pub const FOR: &str = "for";
    /// "press"
    pub const PRESS: &str = "press";
    /// "at"
    pub const AT: &str = "at";
    /// "today"
    pub const TODAY: &str = "today";
    /// "tomorrow"
    pub const TOMORROW: &str = "tomorrow";
    /// "Monday" … "Sunday": `day_0` … `day_6`.
    pub const DAYS: [&str; 7] = [
        "day_0", "day_1", "day_2", "day_3", "day_4", "day_5", "day_6",
    ];
    /// "a m"
    pub const AM: &str = "am";
    /// "p m"
    pub const PM: &str = "pm";
    /// "o'clock"
    pub const OCLOCK: &str = "oclock";
    /// "oh", the zero of "nine oh five".
    pub const OH: &str = "oh";
    /// "Thank you. Your call back is registered. We will call you back shortly. Goodbye."
    pub const REGISTERED: &str = "registered";
    /// "Thank you. We will call you back at the time you chose. Goodbye."
    pub const REGISTERED_SCHEDULED: &str = "registered_scheduled";
    /// "Thank you. We will call you back on the next business day. Goodbye."
    pub const REGISTERED_NEXT_DAY: &str = "registered_next_day";
    /// "You already have a call back waiting."
    pub const DUPLICATE: &str = "duplicate";
    /// "We are sorry, we cannot call that number."
    pub const NUMBER_REFUSED: &str = "number_refused";
    /// "We are sorry, we could not register your call back."
    pub const REGISTRATION_FAILED: &str = "registration_failed";
    /// "Sorry, that is not a valid choice."
    pub const INVALID: &str = "invalid";
    /// "We did not receive your choice. Goodbye."
    pub const NO_INPUT_GOODBYE: &str = "no_input_goodbye";
    /// "Please hold while we connect you."
    pub const CONNECTING: &str = "connecting";
    /// "We are closed now. Please call again during business hours. Goodbye."
    pub const CLOSED: &str = "closed";
    /// "Our wait is too long to offer a call back right now."
    pub const WAIT_TOO_LONG: &str = "wait_too_long";
    /// "Call backs are not available right now. Goodbye."
    pub const UNAVAILABLE: &str = "unavailable";
    /// "Goodbye."
    pub const GOODBYE: &str = "goodbye";
    /// Dialler: "This is your call back from"
    pub const CALLBACK_FROM: &str = "callback_from";
    /// Dialler: "To be connected now, press 1. To be called again later, press 2."
    pub const CALLBACK_MENU: &str = "callback_menu";
    /// Dialler: "Please hold, an agent will be with you shortly." (looped while waiting)
    pub const HOLDING: &str = "holding";
    /// Dialler: "Hello, this is a message about the call back you asked for. We will try
    /// again later. Goodbye."
    pub const VOICEMAIL: &str = "voicemail";
    /// Dialler: "We could not reach an agent. We will call you again. Goodbye."
    pub const AGENT_UNAVAILABLE: &str = "agent_unavailable";
    /// Dialler, agent first, to the agent: "You have a call back. To accept it, press 1."
    pub const WHISPER: &str = "whisper";
    /// Dialler, agent first, to the agent: "The customer could not be reached. The call
    /// back will be tried again. Goodbye."
    pub const CUSTOMER_UNREACHABLE: &str = "customer_unreachable";
    /// A caller who kept holding, the contact center did not take: "We are sorry, no agent
    /// can take your call right now. Please call again later. Goodbye."
    pub const HOLD_FAILED: &str = "hold_failed";
    /// Number words "zero" … "nineteen": `n_0` … `n_19`.
    pub const SMALL: [&str; 20] = [
        "n_0", "n_1", "n_2", "n_3", "n_4", "n_5", "n_6", "n_7", "n_8", "n_9", "n_10", "n_11",
        "n_12", "n_13", "n_14", "n_15", "n_16", "n_17", "n_18", "n_19",
    ];
    /// "twenty" … "ninety": `n_20` … `n_90`.
    pub const TENS: [&str; 8] = [
        "n_20", "n_30", "n_40", "n_50", "n_60", "n_70", "n_80", "n_90",
    ];
    /// "hundred"
    pub const HUNDRED: &str = "hundred";
    /// "thousand"
    pub const THOUSAND: &str = "thousand";

    /// Every file stem above, the list a prompt folder must hold.
    pub const ALL: [&str; 81] = [
        WELCOME,
        WAIT_IS_ABOUT,
        MORE_THAN,
        MINUTE,
        MINUTES,
        MENU_SAME_NUMBER,
        MENU_OTHER_NUMBER,
        MENU_SCHEDULED,
        MENU_HOLD,
        MENU_NEXT_DAY,
        ENTER_NUMBER,
        YOU_ENTERED,
        CONFIRM_NUMBER,
        SLOTS_INTRO,
        FOR,
        PRESS,
        AT,
        TODAY,
        TOMORROW,
        DAYS[0],
        DAYS[1],
        DAYS[2],
        DAYS[3],
        DAYS[4],
        DAYS[5],
        DAYS[6],
        AM,
        PM,
        OCLOCK,
        OH,
        REGISTERED,
        REGISTERED_SCHEDULED,
        REGISTERED_NEXT_DAY,
        DUPLICATE,
        NUMBER_REFUSED,
        REGISTRATION_FAILED,
        INVALID,
        NO_INPUT_GOODBYE,
        CONNECTING,
        CLOSED,
        WAIT_TOO_LONG,
        UNAVAILABLE,
        GOODBYE,
        CALLBACK_FROM,
        CALLBACK_MENU,
        HOLDING,
        VOICEMAIL,
        AGENT_UNAVAILABLE,
        HOLD_FAILED,
        WHISPER,
        CUSTOMER_UNREACHABLE,
        SMALL[0],
        SMALL[1],
        SMALL[2],
        SMALL[3],
        SMALL[4],
        SMALL[5],
        SMALL[6],
        SMALL[7],
        SMALL[8],
        SMALL[9],
        SMALL[10],
        SMALL[11],
        SMALL[12],
        SMALL[13],
        SMALL[14],
        SMALL[15],
        SMALL[16],
        SMALL[17],
        SMALL[18],
        SMALL[19],
        TENS[0],
        TENS[1],
        TENS[2],
        TENS[3],
        TENS[4],
        TENS[5],
        TENS[6],
        TENS[7],
        HUNDRED,
        THOUSAND,
    ];
}
