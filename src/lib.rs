//! holdless: a SIP callback server (B2BUA) for contact centers.
#![warn(missing_docs)]

pub mod acl;
pub mod api;
pub mod call;
pub mod callback;
pub mod cluster;
pub mod config;
pub mod endpoint;
pub mod key_error;
pub mod media;
pub mod metrics;
pub mod resolve;
pub mod runtime;
pub mod sip;
pub mod store;
pub mod tls;

#[doc(hidden)]
pub mod fuzzing;
