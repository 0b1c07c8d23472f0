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
    let (head, params) = match find_outside_quotes(v, '<') {
        Some(open) => match v[open..].find('>') {
            Some(close) => v.split_at(open + close + 1),
            None => (v, ""),
        },
        None => match v.find(';') {
            Some(i) => v.split_at(i),
            None => (v, ""),
        },
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
}
