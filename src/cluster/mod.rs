//! Several holdless nodes on one PostgreSQL database. One node leads: it alone runs the
//! callback engine (registrations, queues, launches, attempts), so every decision is made
//! once and every node answers the same. The others forward callback requests to it
//! ([`forward`]) over the admin listener ([`admin`]); inbound calls stay on the node that
//! answered them. The lead is a lease in the store, renewed by the leader's heartbeat
//! ([`crate::store::Store::heartbeat`]); when the leader dies or drains, another node takes
//! it and rebuilds the engine from the store.

pub mod admin;
pub mod config;
pub mod forward;
