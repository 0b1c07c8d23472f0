//! Which SIP engine owns a message: the calls are split between engines by a hash of the
//! Call-ID, so every message of a dialog and of its transactions (ACK, CANCEL, BYE,
//! responses) lands on the engine that holds its state. The Call-IDs holdless makes for its
//! own legs are chosen to hash to the engine that makes them.

use std::borrow::Cow;

/// One engine's place among `count` engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This engine, `0..count`.
    pub index: usize,
    /// How many engines share the calls.
    pub count: usize,
}

impl Shard {
    /// The only engine.
    pub const SOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether a Call-ID belongs to this engine.
    pub fn owns(self, call_id: &str) -> bool {
        self.count <= 1 || of_call_id(call_id.as_bytes(), self.count) == self.index
    }
}

/// The engine (of `count`) owning a Call-ID value.
pub fn of_call_id(call_id: &[u8], count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    // FNV-1a: stable across processes and cheap; Call-IDs are random enough already.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in call_id {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % count as u64) as usize
}

/// The engine (of `count`) for raw message bytes: by Call-ID, or engine 0 when there is
/// none to find (such a message gets a stateless 400 or is dropped, so any engine will do).
pub fn of_message(bytes: &[u8], count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    call_id(bytes).map_or(0, |id| of_call_id(&id, count))
}

/// The Call-ID header's value (`Call-ID:` or compact `i:`, any case), trimmed, with folded
/// continuation lines joined by one space as the parser joins them; scans the header lines
/// only, without parsing the message (and borrows unless the value was folded).
pub fn call_id(bytes: &[u8]) -> Option<Cow<'_, [u8]>> {
    let head_end = memchr::memmem::find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let head = &bytes[..head_end];
    let mut lines = head.split(|b| *b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i")) {
            continue;
        }
        let mut value = Cow::Borrowed(trim(&line[colon + 1..]));
        while let Some(next) =
            lines.next_if(|l| l.first().is_some_and(|c| *c == b' ' || *c == b'\t'))
        {
            let more = trim(next);
            if more.is_empty() {
                continue;
            }
            let v = value.to_mut();
            if !v.is_empty() {
                v.push(b' ');
            }
            v.extend_from_slice(more);
        }
        return (!value.is_empty()).then_some(value);
    }
    None
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:+15550001000@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK1\r\n\
        call-id :  abc@127.0.0.2 \r\n\
        CSeq: 1 INVITE\r\n\r\nv=0\r\nCall-ID: not-this\r\n";

    #[test]
    fn finds_the_call_id_in_any_case_and_compact_form() {
        let id = |b: &'static [u8]| call_id(b).map(|c| c.into_owned());
        assert_eq!(id(INVITE), Some(b"abc@127.0.0.2".to_vec()));
        let compact = b"BYE sip:a@b SIP/2.0\r\ni: xyz\r\n\r\n";
        assert_eq!(id(compact), Some(b"xyz".to_vec()));
        let in_body_only = b"BYE sip:a@b SIP/2.0\r\nVia: x\r\n\r\nCall-ID: body\r\n";
        assert_eq!(id(in_body_only), None);
        assert_eq!(id(b"SIP/2.0 200 OK\r\nCall-ID:\r\n\r\n"), None);
        assert_eq!(id(b"\x00\xff garbage"), None);
        let folded = b"BYE sip:a@b SIP/2.0\r\nCall-ID:\r\n   folded@host\r\nCSeq: 1 BYE\r\n\r\n";
        assert_eq!(id(folded), Some(b"folded@host".to_vec()));
    }

    #[test]
    fn a_message_goes_where_its_call_id_hashes() {
        for n in 2..5 {
            let want = of_call_id(b"abc@127.0.0.2", n);
            assert_eq!(of_message(INVITE, n), want);
            assert!(Shard {
                index: want,
                count: n
            }
            .owns("abc@127.0.0.2"));
            assert!(!Shard {
                index: (want + 1) % n,
                count: n
            }
            .owns("abc@127.0.0.2"));
        }
        assert_eq!(of_message(b"no call id", 3), 0);
        assert!(Shard::SOLE.owns("anything"));
    }

    #[test]
    fn call_ids_spread_over_the_engines() {
        let mut seen = [0usize; 4];
        for i in 0..4000 {
            seen[of_call_id(format!("{i:x}@127.0.0.1").as_bytes(), 4)] += 1;
        }
        assert!(seen.iter().all(|n| (800..1200).contains(n)), "{seen:?}");
    }
}
