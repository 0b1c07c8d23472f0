//! Hands the socket tasks' inputs to the SIP engines: a message to the engine owning its
//! Call-ID ([`crate::sip::shard`]), a TCP connection's opening and closing to every engine
//! (any of them may answer on it).

use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::engine::Input;
use crate::sip::shard;

/// Why an input was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The engine's queue is full (overload): the input is dropped.
    Full,
    /// The engine has stopped.
    Closed,
}

/// The engines' input queues.
#[derive(Debug, Clone)]
pub struct Dispatch {
    engines: Arc<[mpsc::Sender<Input>]>,
}

impl Dispatch {
    /// Routes to these engines (at least one).
    pub fn new(engines: Vec<mpsc::Sender<Input>>) -> Self {
        Dispatch {
            engines: engines.into(),
        }
    }

    fn for_message(&self, input: &Input) -> &mpsc::Sender<Input> {
        let n = self.engines.len();
        let i = match input {
            Input::Message { bytes, .. } => shard::of_message(bytes, n),
            _ => 0,
        };
        &self.engines[i.min(n - 1)]
    }

    /// Queues a message without waiting (UDP: a full queue drops the datagram, counted by
    /// the caller). Connection events go to every engine.
    pub fn try_send(&self, input: Input) -> Result<(), Refused> {
        let refused = |e: TrySendError<Input>| match e {
            TrySendError::Full(_) => Refused::Full,
            TrySendError::Closed(_) => Refused::Closed,
        };
        match input {
            Input::Message { .. } => self.for_message(&input).try_send(input).map_err(refused),
            other => {
                for e in self.engines.iter() {
                    e.try_send(other.clone()).map_err(refused)?;
                }
                Ok(())
            }
        }
    }

    /// Queues an input, waiting for room (TCP: back-pressure on the connection). `Err` once
    /// the engines are gone.
    pub async fn send(&self, input: Input) -> Result<(), ()> {
        match input {
            Input::Message { .. } => self.for_message(&input).send(input).await.map_err(|_| ()),
            other => {
                for e in self.engines.iter() {
                    e.send(other.clone()).await.map_err(|_| ())?;
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
