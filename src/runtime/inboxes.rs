//! Hands the socket tasks' inputs to the SIP engines: a message to the engine owning its
//! Call-ID ([`crate::sip::shard`]), a TCP connection's opening and closing to every engine
//! (any of them may answer on it).

use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::input::Input;
use crate::acl::AccessList;
use crate::sip::shard;
use crate::sip::Peer;

/// Why an input was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// The engine's queue is full (overload): the input is dropped.
    Full,
    /// The engine has stopped.
    Closed,
}

/// The engines' input queues.
#[derive(Debug, Clone)]
pub struct Inboxes {
    engines: Arc<[mpsc::Sender<Input>]>,
    /// Checked before the Call-ID is looked for: a refused source costs no more than
    /// reading its address, and engine 0 drops or answers it (403 is stateless).
    acl: Arc<AccessList>,
}

impl Inboxes {
    /// Routes to these engines (at least one); sources outside `acl` go to the first.
    pub fn new(engines: Vec<mpsc::Sender<Input>>, acl: AccessList) -> Self {
        Inboxes {
            engines: engines.into(),
            acl: Arc::new(acl),
        }
    }

    /// The engine owning a message: by Call-ID, or the first for a refused source (not
    /// scanned) and with a single engine.
    fn engine_for(&self, bytes: &[u8], from: &Peer) -> &mpsc::Sender<Input> {
        let n = self.engines.len();
        let i = if n > 1 && self.acl.permits(from.addr.ip()) {
            shard::of_message(bytes, n)
        } else {
            0
        };
        &self.engines[i.min(n - 1)]
    }

    /// Queues a message without waiting (UDP: a full queue drops the datagram, counted by
    /// the caller). Connection events go to every engine.
    pub fn try_send(&self, input: Input) -> Result<(), NotQueued> {
        let refused = |e: TrySendError<Input>| match e {
            TrySendError::Full(_) => NotQueued::Full,
            TrySendError::Closed(_) => NotQueued::Closed,
        };
        match &input {
            Input::Message { bytes, from } => self
                .engine_for(bytes, from)
                .try_send(input)
                .map_err(refused),
            _ => {
                for e in self.engines.iter() {
                    e.try_send(input.clone()).map_err(refused)?;
                }
                Ok(())
            }
        }
    }

    /// Queues an input, waiting for room (TCP: back-pressure on the connection). `Err` once
    /// the engines are gone.
    pub async fn send(&self, input: Input) -> Result<(), ()> {
        match &input {
            Input::Message { bytes, from } => {
                let engine = self.engine_for(bytes, from);
                engine.send(input).await.map_err(|_| ())
            }
            _ => {
                for e in self.engines.iter() {
                    e.send(input.clone()).await.map_err(|_| ())?;
                }
                Ok(())
            }
        }
    }

    /// Whether every engine has stopped.
    pub fn is_closed(&self) -> bool {
        self.engines.iter().all(|e| e.is_closed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AclConfig, RefuseAction};
    use crate::sip::{ConnId, Peer};
    use bytes::Bytes;

    fn inboxes(n: usize) -> (Inboxes, Vec<mpsc::Receiver<Input>>) {
        let (tx, rx): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel(8)).unzip();
        let acl = AccessList::new(&AclConfig {
            action: RefuseAction::Drop,
            allow: vec!["127.0.0.1/32".parse().unwrap()],
            deny: vec![],
        });
        (Inboxes::new(tx, acl), rx)
    }

    /// A Call-ID that engine `want` of `n` owns.
    fn call_id_for(want: usize, n: usize) -> String {
        (0..)
            .map(|i| format!("c{i}@test"))
            .find(|c| shard::of_call_id(c.as_bytes(), n) == want)
            .unwrap()
    }

    fn message(call_id: &str, from: &str) -> Input {
        let text = format!("OPTIONS sip:h SIP/2.0\r\nCall-ID: {call_id}\r\n\r\n");
        Input::Message {
            bytes: Bytes::from(text),
            from: Peer::udp(from.parse().unwrap()),
        }
    }

    #[test]
    fn messages_go_to_their_call_id_s_engine_and_refused_sources_to_the_first() {
        let (d, mut rx) = inboxes(3);
        let id = call_id_for(2, 3);
        d.try_send(message(&id, "127.0.0.1:5070")).unwrap();
        assert!(rx[2].try_recv().is_ok(), "allowed source: by Call-ID");
        d.try_send(message(&id, "127.0.0.2:5070")).unwrap();
        assert!(rx[0].try_recv().is_ok(), "refused source: not even scanned");
        assert!(rx[1].try_recv().is_err() && rx[2].try_recv().is_err());
    }

    #[test]
    fn connection_events_reach_every_engine() {
        let (d, mut rx) = inboxes(3);
        d.try_send(Input::Closed { conn: ConnId(7) }).unwrap();
        for r in &mut rx {
            assert!(matches!(
                r.try_recv(),
                Ok(Input::Closed { conn: ConnId(7) })
            ));
        }
    }
}
