//! One leg of a call: a half-dialogue holdless either answered (UAS: an INVITE that came in)
//! or placed (UAC: an INVITE it sent). The leg holds what SIP needs whatever flow owns it:
//! the INVITE and its transaction, the dialog, where requests go, the session timer, the
//! last SDP sent, and our 2xx waiting for its ACK.

use std::time::Duration;

use bytes::Bytes;

use super::route;
use super::session_timer::SessionTimer;
use crate::sip::dialog::Dialog;
use crate::sip::digest::{Credentials, DigestSession};
use crate::sip::transaction::{ClientTxId, ServerTxId};
use crate::sip::{Message, Peer};

/// Which way the leg's INVITE went, and that INVITE's transaction state.
#[derive(Debug, Clone)]
pub(super) enum Role {
    /// holdless answers this leg: the server transaction of its INVITE while it lives.
    Uas {
        /// The INVITE's server transaction, until the final response is sent.
        tx: Option<ServerTxId>,
    },
    /// holdless placed this leg.
    Uac(Outgoing),
}

/// The state of an INVITE holdless sent.
#[derive(Debug, Clone, Default)]
pub(super) struct Outgoing {
    /// The INVITE's client transaction, until its final response.
    pub tx: Option<ClientTxId>,
    /// A provisional response came (a CANCEL may be sent).
    pub provisional: bool,
    /// The flow wants the INVITE cancelled (sent once a provisional came).
    pub cancel_wanted: bool,
    /// The INVITE was already resent after a 422.
    pub retried_422: bool,
    /// Times the INVITE was resent with credentials after a 401/407.
    pub auth_retries: u8,
    /// Further addresses of the same destination (RFC 3263 order), tried in turn when
    /// this one answers 503 or cannot be reached.
    pub alternates: Vec<Peer>,
}

/// A 2xx we retransmit until its ACK comes (RFC 3261 §13.3.1.4).
#[derive(Debug, Clone)]
pub(super) struct Pending2xx {
    /// The response.
    pub msg: Message,
    /// Where it goes.
    pub to: Peer,
    /// The current retransmission interval.
    pub interval: Duration,
    /// The CSeq of the INVITE it answers (the ACK carries the same).
    pub cseq: u32,
}

/// One half of a call.
#[derive(Debug, Clone)]
pub(super) struct Leg {
    /// UAS or UAC, with the INVITE transaction's state.
    pub role: Role,
    /// The INVITE that made the leg (UAS: as received, Via stamped; UAC: as last sent).
    pub invite: Message,
    /// The dialog, once there is one.
    pub dialog: Option<Dialog>,
    /// UAS: where its INVITE came from. UAC: where its INVITE went.
    pub peer: Peer,
    /// The negotiated session timer, if any.
    pub session: Option<SessionTimer>,
    /// The last SDP holdless sent on this leg (resent by re-INVITE refreshes).
    pub sdp_sent: Option<Bytes>,
    /// Whether the peer allows UPDATE (used for refreshes without SDP).
    pub allows_update: bool,
    /// An INVITE or UPDATE of ours in progress on this leg (relay or refresh).
    pub request_out: Option<ClientTxId>,
    /// A provisional response came to `request_out` (an INVITE of ours may be cancelled).
    pub request_out_provisional: bool,
    /// Our 2xx on this leg waiting for its ACK.
    pub pending_2xx: Option<Pending2xx>,
    /// A BYE to send once the ACK of our 2xx arrives (§15: never before it).
    pub bye_after_ack: bool,
    /// Digest credentials for this leg's far end and what it challenged with (UAC legs
    /// placed through a trunk that authenticates).
    pub auth: Option<LegAuth>,
}

/// A UAC leg's digest authentication (RFC 2617/7616/8760): the trunk's credentials and
/// the challenges met, so later requests in the dialog are answered too.
#[derive(Debug, Clone)]
pub(super) struct LegAuth {
    /// The credentials (never logged).
    pub credentials: std::sync::Arc<Credentials>,
    /// The challenges met and their nonce counts.
    pub session: DigestSession,
    /// Our BYE on this leg, kept to send again with credentials if it is challenged.
    pub bye: Option<crate::sip::Message>,
    /// Our session refresh was challenged and sent again (reset when one succeeds).
    pub refresh_challenged: bool,
}

impl Leg {
    /// A leg for an INVITE holdless received (server transaction `tx`) from `peer`.
    pub fn uas(invite: Message, tx: ServerTxId, peer: Peer) -> Self {
        Self::new(Role::Uas { tx: Some(tx) }, invite, peer)
    }

    /// A leg for an INVITE holdless sent to `peer` (client transaction `tx`).
    pub fn uac(invite: Message, tx: ClientTxId, peer: Peer) -> Self {
        let out = Outgoing {
            tx: Some(tx),
            ..Outgoing::default()
        };
        Self::new(Role::Uac(out), invite, peer)
    }

    fn new(role: Role, invite: Message, peer: Peer) -> Self {
        Leg {
            role,
            invite,
            dialog: None,
            peer,
            session: None,
            sdp_sent: None,
            allows_update: false,
            request_out: None,
            request_out_provisional: false,
            pending_2xx: None,
            bye_after_ack: false,
            auth: None,
        }
    }

    /// UAS: the INVITE's server transaction while no final response went out.
    pub fn invite_tx(&self) -> Option<ServerTxId> {
        match self.role {
            Role::Uas { tx } => tx,
            Role::Uac(_) => None,
        }
    }

    /// UAS: takes the INVITE's server transaction to send the final response on it.
    pub fn take_invite_tx(&mut self) -> Option<ServerTxId> {
        match &mut self.role {
            Role::Uas { tx } => tx.take(),
            Role::Uac(_) => None,
        }
    }

    /// UAC: the state of our INVITE.
    pub fn outgoing(&self) -> Option<&Outgoing> {
        match &self.role {
            Role::Uac(o) => Some(o),
            Role::Uas { .. } => None,
        }
    }

    /// UAC: the state of our INVITE, to change.
    pub fn outgoing_mut(&mut self) -> Option<&mut Outgoing> {
        match &mut self.role {
            Role::Uac(o) => Some(o),
            Role::Uas { .. } => None,
        }
    }

    /// UAC: our INVITE's client transaction while it waits for a final response.
    pub fn invite_out_tx(&self) -> Option<ClientTxId> {
        self.outgoing().and_then(|o| o.tx)
    }

    /// Files `id` as the INVITE or UPDATE of ours in progress on this leg.
    pub fn set_request_out(&mut self, id: ClientTxId) {
        self.request_out = Some(id);
        self.request_out_provisional = false;
    }

    /// Where an in-dialog request goes: back down the TCP or TLS connection the leg uses, else
    /// the dialog's next hop (first route or remote target).
    pub fn next_hop(&self) -> Peer {
        if self.peer.transport.is_stream() && self.peer.conn.is_some() {
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
