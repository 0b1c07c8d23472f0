//! Cutting a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3), and the
//! RFC 5626 CRLF keep-alive.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use super::message::Header;
use super::parse::{content_length, MAX_MESSAGE_BYTES};

/// What the framer found next in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One whole message: head, blank line and exactly Content-Length body bytes.
    Message(Bytes),
    /// A double-CRLF keep-alive ping (RFC 5626 §3.5.1): answer with a single CRLF.
    Ping,
}

/// The stream cannot be framed any more: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A message (head or head + body) over [`MAX_MESSAGE_BYTES`].
    #[error("message larger than 64 KiB")]
    TooLarge,
    /// Content-Length missing sense (negative, not a number, conflicting).
    #[error("bad Content-Length: {0}")]
    BadLength(&'static str),
}

/// Buffers stream bytes and yields frames. Each byte is searched for the end of the head
/// once and a head is read once, however the peer cuts its bytes (a peer trickling a
/// message a byte at a time costs linear, not quadratic, work).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    /// Bytes of `buf` already searched for the blank line without finding it.
    searched: usize,
    /// The current message's whole length, once its head is complete.
    total: Option<usize>,
    /// Bytes searched for blank lines so far (the tests' measure of the work done).
    #[cfg(test)]
    work: usize,
}

impl StreamFramer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        while self.total.is_none() && self.buf.starts_with(b"\r\n") {
            self.searched = 0;
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.advance(4);
                return Ok(Some(Frame::Ping));
            }
            if self.buf.len() < 4 && b"\r\n\r\n".starts_with(&self.buf) {
                return Ok(None);
            }
            self.buf.advance(2);
        }
        let total = match self.total {
            Some(total) => total,
            None => {
                // The blank line may straddle what was searched and what is new.
                let from = self.searched.saturating_sub(3);
                #[cfg(test)]
                {
                    self.work += self.buf.len() - from;
                }
                let Some(at) = memmem::find(&self.buf[from..], b"\r\n\r\n") else {
                    if self.buf.len() > MAX_MESSAGE_BYTES {
                        return Err(FramingError::TooLarge);
                    }
                    self.searched = self.buf.len();
                    return Ok(None);
                };
                let end = from + at;
                let body_len = head_content_length(&self.buf[..end])?;
                let total = (end + 4)
                    .checked_add(body_len)
                    .ok_or(FramingError::TooLarge)?;
                if total > MAX_MESSAGE_BYTES {
                    return Err(FramingError::TooLarge);
                }
                self.total = Some(total);
                total
            }
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        self.searched = 0;
        self.total = None;
        Ok(Some(Frame::Message(self.buf.split_to(total).freeze())))
    }
}

/// Content-Length from a raw head; absent counts as zero on a stream.
fn head_content_length(head: &[u8]) -> Result<usize, FramingError> {
    let text = String::from_utf8_lossy(head);
    let headers: Vec<Header> = text
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| Header {
            name: n.trim().to_owned(),
            value: v.trim().to_owned(),
        })
        .collect();
    Ok(content_length(&headers)
        .map_err(FramingError::BadLength)?
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nhi";

    #[test]
    fn several_messages_in_one_read() {
        let mut f = StreamFramer::new();
        f.push(&[MSG, MSG, MSG].concat());
        for _ in 0..3 {
            assert_eq!(
                f.next_frame().unwrap(),
                Some(Frame::Message(Bytes::from_static(MSG)))
            );
        }
        assert_eq!(f.next_frame().unwrap(), None);
    }

    #[test]
    fn one_message_split_across_reads() {
        let mut f = StreamFramer::new();
        for chunk in MSG.chunks(5) {
            assert_eq!(f.next_frame().unwrap(), None);
            f.push(chunk);
        }
        assert_eq!(
            f.next_frame().unwrap(),
            Some(Frame::Message(Bytes::from_static(MSG)))
        );
    }

    #[test]
    fn a_message_trickled_a_byte_at_a_time_is_searched_once() {
        let body = vec![b'x'; 30_000];
        let head = format!(
            "MESSAGE sip:a@b SIP/2.0\r\nX-Pad: {}\r\nContent-Length: {}\r\n\r\n",
            "p".repeat(30_000),
            body.len()
        );
        let msg = [head.as_bytes(), &body, MSG].concat();
        let mut f = StreamFramer::new();
        let mut frames = Vec::new();
        for b in &msg {
            f.push(std::slice::from_ref(b));
            while let Some(frame) = f.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        let first = head.len() + body.len();
        assert_eq!(
            frames,
            [
                Frame::Message(Bytes::copy_from_slice(&msg[..first])),
                Frame::Message(Bytes::from_static(MSG)),
            ]
        );
        // Each byte searched at most four times (the three before it again, for a blank
        // line cut in two), not once per byte that came after it.
        assert!(f.work <= 4 * msg.len(), "{} bytes searched", f.work);
    }

    #[test]
    fn double_crlf_is_a_ping_single_crlf_is_skipped() {
        let mut f = StreamFramer::new();
        f.push(b"\r\n\r\n");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
        f.push(b"\r\n");
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(MSG);
        assert_eq!(
            f.next_frame().unwrap(),
            Some(Frame::Message(Bytes::from_static(MSG)))
        );
    }

    #[test]
    fn oversized_and_bad_lengths_close() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge));
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; MAX_MESSAGE_BYTES + 1]);
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge));
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n");
        assert!(matches!(f.next_frame(), Err(FramingError::BadLength(_))));
    }
}
