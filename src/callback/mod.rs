//! The callback engine: call-target settings, business hours, number rules, the ECBT
//! estimator, scheduled slots and the sans-IO [`Engine`] that decides whether, when and for
//! whom a callback happens. [`service`] is its thin shell: one thread that owns the engine
//! and the store, feeds the engine the wall clock, and group-commits every state change
//! before anything is acknowledged.

pub mod attempt;
pub mod config;
pub mod ecbt;
pub mod engine;
pub mod hours;
pub mod model;
pub mod number;
pub mod quote;
pub mod rank;
pub mod record;
pub mod service;
pub mod slots;

pub use config::{CallbackSettings, Organization, Widget};
pub use engine::{
    CancelOutcome, Engine, Launch, Refused, RegisterRequest, Registered, StatusView, TargetConfig,
    TargetView, Write,
};
pub use model::{
    AttemptResult, Callback, CallbackId, FirstParty, Kind, Refusal, Source, Status, WidgetState,
};
