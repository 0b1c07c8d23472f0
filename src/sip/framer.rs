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

/// Buffers stream bytes and yields frames.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
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
        while self.buf.starts_with(b"\r\n") {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.advance(4);
                return Ok(Some(Frame::Ping));
            }
            if self.buf.len() < 4 && b"\r\n\r\n".starts_with(&self.buf) {
                return Ok(None);
            }
            self.buf.advance(2);
        }
        let Some(end) = memmem::find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > MAX_MESSAGE_BYTES {
                return Err(FramingError::TooLarge);
            }
            return Ok(None);
        };
        let head_len = end + 4;
        let body_len = head_content_length(&self.buf[..end])?;
        let total = head_len
            .checked_add(body_len)
            .ok_or(FramingError::TooLarge)?;
        if total > MAX_MESSAGE_BYTES {
            return Err(FramingError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
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
