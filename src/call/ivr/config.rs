//! A call target's IVR keys (`ivr`, `not_offering`, `reject_status`, `input_timeout_secs`,
//! `max_quoted_minutes`, `prompts`, `menu_retries`), validated into [`IvrSettings`] the way
//! the callback keys are: read as plain values on the call-target table, each error naming
//! its key.

use std::path::PathBuf;
use std::time::Duration;

use crate::callback::config::RawCallTarget;
use crate::key_error::KeyError;

/// Default status for `not_offering = "reject"`: 480 Temporarily Unavailable.
pub const DEFAULT_REJECT_STATUS: u16 = 480;

/// Default wait for a key after a prompt ends, seconds.
pub const DEFAULT_INPUT_TIMEOUT_SECS: u64 = 6;

/// Longest input timeout accepted, seconds: beyond it a silent caller holds a menu slot
/// (player, detectors) for minutes.
pub const MAX_INPUT_TIMEOUT_SECS: u64 = 60;

/// Default cap on the quoted wait: past it the caller hears "more than 60 minutes".
pub const DEFAULT_MAX_QUOTED_MINUTES: u32 = 60;

/// Largest cap on the quoted wait accepted (a day).
pub const MAX_QUOTED_MINUTES: u32 = 24 * 60;

/// Default times the menu is played again after no input or an invalid key.
pub const DEFAULT_MENU_RETRIES: u32 = 1;

/// Most menu replays accepted: a caller who has not answered after this many is gone.
pub const MAX_MENU_RETRIES: u32 = 5;

/// Default prompt folder.
pub const DEFAULT_PROMPTS: &str = "configs/prompts";

/// How a caller offered a callback is handled (`ivr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IvrMode {
    /// `"menu"`: play the offer and the menu, take DTMF.
    Menu,
    /// `"none"`: the flow upstream already asked the caller: register for the caller's
    /// number at once, confirm, hang up.
    None,
}

/// What happens to a caller when the call target is not offering callbacks (`not_offering`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotOfferingMode {
    /// `"bridge"`: straight to the contact center (`display_ewt_only`: the wait is quoted
    /// first).
    Bridge,
    /// `"announce"`: answer, say why (closed, wait too long, unavailable), hang up.
    Announce,
    /// `"reject"`: refuse the INVITE with `reject_status`.
    Reject,
}

/// A call target's IVR settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrSettings {
    /// Menu or straight registration.
    pub mode: IvrMode,
    /// When callbacks are not offered.
    pub not_offering: NotOfferingMode,
    /// SIP status for [`NotOfferingMode::Reject`], 400-699.
    pub reject_status: u16,
    /// Wait for a key after a prompt ends (and between the digits of a number).
    pub input_timeout: Duration,
    /// Waits above this many minutes are quoted as "more than N minutes".
    pub max_quoted_minutes: u32,
    /// The prompt folder (one WAV per prompt name).
    pub prompts: PathBuf,
    /// Times the menu is played again after no input or an invalid key before a polite end.
    pub menu_retries: u32,
}

impl Default for IvrSettings {
    fn default() -> Self {
        IvrSettings {
            mode: IvrMode::Menu,
            not_offering: NotOfferingMode::Bridge,
            reject_status: DEFAULT_REJECT_STATUS,
            input_timeout: Duration::from_secs(DEFAULT_INPUT_TIMEOUT_SECS),
            max_quoted_minutes: DEFAULT_MAX_QUOTED_MINUTES,
            prompts: PathBuf::from(DEFAULT_PROMPTS),
            menu_retries: DEFAULT_MENU_RETRIES,
        }
    }
}

/// Validates the IVR keys of the call target `key` (`call_targets[2]`), pushing one error per
/// bad key; a bad key keeps its default so the rest can still be checked.
pub(crate) fn validate(errors: &mut Vec<KeyError>, key: &str, t: &RawCallTarget) -> IvrSettings {
    let mut err = |k: &str, message: String| {
        errors.push(KeyError {
            key: format!("{key}.{k}"),
            message,
        })
    };
    let mut s = IvrSettings::default();
    match t.ivr.as_deref() {
        None | Some("menu") => {}
        Some("none") => s.mode = IvrMode::None,
        Some(v) => err("ivr", format!("must be \"menu\" or \"none\", not {v:?}")),
    }
    match t.not_offering.as_deref() {
        None | Some("bridge") => {}
        Some("announce") => s.not_offering = NotOfferingMode::Announce,
        Some("reject") => s.not_offering = NotOfferingMode::Reject,
        Some(v) => err(
            "not_offering",
            format!("must be \"bridge\", \"announce\" or \"reject\", not {v:?}"),
        ),
    }
    if let Some(v) = t.reject_status {
        if (400..=699).contains(&v) {
            s.reject_status = v;
        } else {
            err(
                "reject_status",
                format!("must be a SIP failure status 400-699, not {v}"),
            );
        }
    }
    if let Some(v) = t.input_timeout_secs {
        if (1..=MAX_INPUT_TIMEOUT_SECS).contains(&v) {
            s.input_timeout = Duration::from_secs(v);
        } else {
            err(
                "input_timeout_secs",
                format!("must be 1-{MAX_INPUT_TIMEOUT_SECS}, not {v}"),
            );
        }
    }
    if let Some(v) = t.max_quoted_minutes {
        if (1..=MAX_QUOTED_MINUTES).contains(&v) {
            s.max_quoted_minutes = v;
        } else {
            err(
                "max_quoted_minutes",
                format!("must be 1-{MAX_QUOTED_MINUTES}, not {v}"),
            );
        }
    }
    if let Some(v) = &t.prompts {
        if v.trim().is_empty() {
            err(
                "prompts",
                "must name a folder of prompt WAV files".to_owned(),
            );
        } else {
            s.prompts = PathBuf::from(v);
        }
    }
    if let Some(v) = t.menu_retries {
        if v <= MAX_MENU_RETRIES {
            s.menu_retries = v;
        } else {
            err(
                "menu_retries",
                format!("at most {MAX_MENU_RETRIES}, not {v}"),
            );
        }
    }
    s
}
