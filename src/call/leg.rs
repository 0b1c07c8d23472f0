//! One leg of a bridged call: its dialog, where its requests go, its session timer and the
//! last SDP holdless sent on it.

use bytes::Bytes;

use super::route;
use super::session_timer::SessionTimer;
use crate::sip::dialog::Dialog;
use crate::sip::transaction::ClientTxId;
use crate::sip::{Peer, Transport};

/// One half of a call.
#[derive(Debug, Clone)]
pub(super) struct Leg {
    /// The dialog, once there is one.
    pub dialog: Option<Dialog>,
    /// Caller: where its INVITE came from. Callee: where its INVITE went.
    pub peer: Peer,
    /// The negotiated session timer, if any.
    pub session: Option<SessionTimer>,
    /// The last SDP holdless sent on this leg (resent by re-INVITE refreshes).
    pub sdp_sent: Option<Bytes>,
    /// Whether the peer allows UPDATE (used for refreshes without SDP).
    pub allows_update: bool,
    /// An INVITE or UPDATE of ours in progress on this leg (relay or refresh).
    pub request_out: Option<ClientTxId>,
}

impl Leg {
    /// A leg with no dialog yet.
    pub fn new(peer: Peer) -> Self {
        Leg {
            dialog: None,
            peer,
            session: None,
            sdp_sent: None,
            allows_update: false,
            request_out: None,
        }
    }

    /// Where an in-dialog request goes: back down the TCP connection the leg uses, else
    /// the dialog's next hop (first route or remote target).
    pub fn next_hop(&self) -> Peer {
        if self.peer.transport == Transport::Tcp && self.peer.conn.is_some() {
            return self.peer;
        }
        self.dialog
            .as_ref()
            .and_then(|d| route::destination(&d.next_hop()).ok())
            .map(|p| Peer {
                local: self.peer.local,
                ..p
            })
            .unwrap_or(self.peer)
    }
}
