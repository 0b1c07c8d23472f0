//! The inbound caller's conversation (issue 8): what happens to a transferred caller, and
//! the sans-IO menu that takes them from the callback offer to a registered callback, a
//! bridge to the contact center, or a polite end.
//!
//! - [`config`]: the call target's IVR keys ([`IvrSettings`]).
//! - [`plan`]: the decision made once per caller from the widget view ([`plan::entry`]).
//! - [`menu`]: the conversation itself ([`Menu`]), driven by prompt ends, digits, time, the
//!   registration's result and the hangup; it answers with [`Action`]s.

pub mod config;
pub mod menu;
pub mod plan;
#[cfg(test)]
mod tests;

pub use config::{IvrMode, IvrSettings, NotOfferingMode};
pub use menu::{Action, Menu, Outcome, RefusalKind, RegisterKind, RegisteredSummary, Step};
pub use plan::{entry, Entry, NotOffering, Offer, SlotChoice};
