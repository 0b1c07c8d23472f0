//! SIP: the message facade, framing and parsing, typed header views, transactions.

pub mod dialog;
pub mod digest;
pub mod framer;
pub mod message;
pub mod method;
pub mod name_addr;
pub mod parse;
pub mod peer;
pub mod shard;
pub mod transaction;
pub mod uri;
pub mod uui;
pub mod validate;
pub mod via;

pub use message::{Header, Message, Name, StartLine};
pub use method::Method;
pub use peer::{ConnId, Peer, Transmit, Transport};
