//! name-addr / addr-spec values (From, To, Contact, Route, Record-Route): the URI inside,
//! the tag parameter, and the value without its tag.

/// The `tag` header parameter of a From or To value.
pub use super::transaction::key_tag as tag;

/// The URI of a name-addr (`"Bob" <sip:b@h>;tag=1` → `sip:b@h`) or a bare addr-spec
/// (`sip:b@h;tag=1` → `sip:b@h`).
pub fn uri(value: &str) -> &str {
    let v = value.trim();
    if let Some(open) = find_outside_quotes(v, '<') {
        let rest = &v[open + 1..];
        return rest.split('>').next().unwrap_or_default().trim();
    }
    v.split(';').next().unwrap_or_default().trim()
}

/// The value with its `;tag=` header parameter removed.
pub fn without_tag(value: &str) -> String {
    let v = value.trim();
    // The same split as `tag`: the header parameters start at the first `;` outside quotes
    // unless a `<` comes first, and then after its `>`. Otherwise a value `tag` reads a tag
    // in could keep it here (`sip:a@h;tag=1 <x>`, `a>;tag=1;<b`).
    let open = find_outside_quotes(v, '<');
    let (head, params) = match (open, find_outside_quotes(v, ';')) {
        (open, Some(semi)) if open.is_none_or(|o| semi < o) => v.split_at(semi),
        (Some(open), _) => match v[open..].find('>') {
            Some(close) => v.split_at(open + close + 1),
            None => (v, ""),
        },
        _ => (v, ""),
    };
    let kept: String = params
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .filter(|p| !p.trim().to_ascii_lowercase().starts_with("tag"))
        .map(|p| format!(";{}", p.trim()))
        .collect();
    format!("{head}{kept}")
}

/// `value;tag=tag`.
pub fn with_tag(value: &str, tag: &str) -> String {
    format!("{};tag={tag}", without_tag(value))
}

fn find_outside_quotes(v: &str, target: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in v.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == target && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_of_name_addr_and_addr_spec() {
        assert_eq!(uri("\"A <x>\" <sip:a@h;lr>;tag=1"), "sip:a@h;lr");
        assert_eq!(uri("sip:a@h;tag=1"), "sip:a@h");
        assert_eq!(uri("<sip:127.0.0.54;lr>"), "sip:127.0.0.54;lr");
    }

    #[test]
    fn tags_are_removed_and_added() {
        assert_eq!(
            without_tag("<sip:a@h;tag=uri>;tag=1;x=y"),
            "<sip:a@h;tag=uri>;x=y"
        );
        assert_eq!(with_tag("sip:a@h;tag=1", "2"), "sip:a@h;tag=2");
        assert_eq!(tag(&with_tag("\"B\" <sip:b@h>", "t9")), Some("t9"));
    }

    /// Found by the `sip_parse` and `sip_uri` fuzz targets: values where `tag` reads a tag
    /// that `without_tag` kept (a `;` before a `<`, a `<` with no `>`).
    #[test]
    fn without_tag_removes_every_tag_that_tag_reads() {
        for v in [
            "sip:watson@example.com;tag=838293tact: <sip:+19725552222@gw1.example.net;unknownparam>",
            "1lice\u{c0}p:%61lice@127.0.0.1>;tag=x;<ag=y",
            "\"a;b\" <sip:a@h>;tag=1",
        ] {
            assert!(tag(v).is_some(), "{v}");
            assert_eq!(tag(&without_tag(v)), None, "{v}");
        }
    }
}
