//! Header escaping (1.2 "Value Encoding"): checking, decoding and encoding.
//!
//! | version | escapes |
//! |---|---|
//! | 1.0, and CONNECT / CONNECTED / STOMP always | none: a backslash is an ordinary octet |
//! | 1.1 | `\n` LF, `\c` colon, `\\` backslash |
//! | 1.2 | `\r` CR, `\n` LF, `\c` colon, `\\` backslash |

use alloc::borrow::Cow;
use alloc::string::String;

use bytes::BufMut;
use memchr::{memchr, memchr2, memchr3};

use crate::Version;
use crate::swar;
use crate::version::Escaping;

/// What is wrong with a header name or value, at an offset within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flaw {
    /// A backslash that starts no defined escape; the octet after it, if any.
    UndefinedEscape { at: usize, escape: Option<u8> },
    /// A raw CR, which 1.2 does not allow inside a line.
    LoneCarriageReturn { at: usize },
}

/// The octet that `escape` stands for under `escaping`, if it is a defined escape.
pub(crate) fn unescape(escaping: Escaping, escape: u8) -> Option<u8> {
    match (escaping, escape) {
        (Escaping::None, _) => None,
        (_, b'n') => Some(b'\n'),
        (_, b'c') => Some(b':'),
        (_, b'\\') => Some(b'\\'),
        (Escaping::V1_2, b'r') => Some(b'\r'),
        _ => None,
    }
}

/// Checks a raw header name or value: every escape must be defined unless `keep_undefined` is
/// set, and a raw CR is refused when `reject_cr` is set (1.2, where an EOL is LF or CR LF only).
/// Only lines that hold a backslash or a CR come here, and they are short: a plain loop.
pub(crate) fn check(
    raw: &[u8],
    escaping: Escaping,
    keep_undefined: bool,
    reject_cr: bool,
) -> Result<(), Flaw> {
    let check_escapes = escaping != Escaping::None && !keep_undefined;
    let mut at = 0;
    while let Some(&octet) = raw.get(at) {
        match octet {
            b'\r' if reject_cr => return Err(Flaw::LoneCarriageReturn { at }),
            b'\\' if check_escapes => {
                let escape = raw.get(at + 1).copied();
                if escape.and_then(|e| unescape(escaping, e)).is_none() {
                    return Err(Flaw::UndefinedEscape { at, escape });
                }
                at += 2;
            }
            _ => at += 1,
        }
    }
    Ok(())
}

/// Decodes a raw header name or value. Borrows when there is nothing to decode; undefined
/// escapes (which only reach here when the decoder keeps them) stay verbatim.
pub(crate) fn decode(raw: &str, escaping: Escaping) -> Cow<'_, str> {
    if escaping == Escaping::None {
        return Cow::Borrowed(raw);
    }
    let Some(first) = memchr(b'\\', raw.as_bytes()) else {
        return Cow::Borrowed(raw);
    };
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    let mut next = Some(first);
    while let Some(i) = next {
        let (plain, tail) = rest.split_at(i);
        out.push_str(plain);
        // `tail` starts with the backslash; both it and any defined escape are ASCII, so every
        // split below falls on a character boundary.
        match tail.as_bytes().get(1).and_then(|&e| unescape(escaping, e)) {
            Some(octet) => {
                out.push(char::from(octet));
                rest = tail.get(2..).unwrap_or_default();
            }
            None => {
                out.push('\\');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
        next = memchr(b'\\', rest.as_bytes());
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Whether the raw name `raw`, once decoded, equals `target`, without allocating.
pub(crate) fn decoded_eq(raw: &[u8], target: &[u8], escaping: Escaping) -> bool {
    if escaping == Escaping::None || memchr(b'\\', raw).is_none() {
        return raw == target;
    }
    let mut decoded = Unescaped {
        raw,
        escaping,
        pos: 0,
    };
    target.iter().all(|&t| decoded.next() == Some(t)) && decoded.next().is_none()
}

/// The octets of a raw header field, decoded one by one.
struct Unescaped<'a> {
    raw: &'a [u8],
    escaping: Escaping,
    pos: usize,
}

impl Iterator for Unescaped<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let octet = *self.raw.get(self.pos)?;
        self.pos += 1;
        if octet != b'\\' {
            return Some(octet);
        }
        match self
            .raw
            .get(self.pos)
            .and_then(|&e| unescape(self.escaping, e))
        {
            Some(decoded) => {
                self.pos += 1;
                Some(decoded)
            }
            None => Some(b'\\'),
        }
    }
}

/// Whether a header name or value is being encoded: a raw colon only matters in a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Name,
    Value,
}

/// The first octet of `field` that cannot be carried under `escaping` and `version`.
///
/// Without escaping, a name cannot hold a colon and nothing can hold LF. A raw CR is an error in
/// 1.2 unless escaped; in 1.0 and 1.1 it is an ordinary octet, except at the end of a value,
/// where the decoder would take it for the CR of a CR LF.
pub(crate) fn unrepresentable(
    field: &[u8],
    kind: Field,
    escaping: Escaping,
    version: Version,
) -> Option<u8> {
    let trailing_cr = kind == Field::Value && field.last() == Some(&b'\r');
    match escaping {
        Escaping::V1_2 => None,
        Escaping::V1_1 => trailing_cr.then_some(b'\r'),
        Escaping::None => {
            let found = match (kind, version) {
                (Field::Name, Version::V1_2) => memchr3(b'\n', b':', b'\r', field),
                (Field::Name, _) => memchr2(b'\n', b':', field),
                (Field::Value, Version::V1_2) => memchr2(b'\n', b'\r', field),
                (Field::Value, _) => memchr(b'\n', field),
            };
            match found.and_then(|i| field.get(i)) {
                Some(&octet) => Some(octet),
                None => trailing_cr.then_some(b'\r'),
            }
        }
    }
}

/// The escape that stands for `octet` under `escaping`, if it needs one.
fn escape_of(octet: u8, escaping: Escaping) -> Option<&'static [u8]> {
    match (escaping, octet) {
        (Escaping::None, _) => None,
        (_, b'\n') => Some(b"\\n"),
        (_, b':') => Some(b"\\c"),
        (_, b'\\') => Some(b"\\\\"),
        (Escaping::V1_2, b'\r') => Some(b"\\r"),
        _ => None,
    }
}

/// The number of octets `field` takes once escaped.
pub(crate) fn escaped_len(field: &[u8], escaping: Escaping) -> usize {
    if escaping == Escaping::None {
        return field.len();
    }
    field.len()
        + field
            .iter()
            .filter(|&&octet| escape_of(octet, escaping).is_some())
            .count()
}

/// Writes `field` escaped under `escaping`; runs of plain octets are copied whole, and most
/// fields are one run.
pub(crate) fn put_escaped<B: BufMut>(dst: &mut B, field: &[u8], escaping: Escaping) {
    if escaping == Escaping::None {
        dst.put_slice(field);
        return;
    }
    let mut rest = field;
    while let Some(i) = swar::find_escapable(rest) {
        let (plain, tail) = rest.split_at(i);
        dst.put_slice(plain);
        if let Some(&octet) = tail.first() {
            // A CR needs no escape in 1.1.
            match escape_of(octet, escaping) {
                Some(escape) => dst.put_slice(escape),
                None => dst.put_u8(octet),
            }
        }
        rest = tail.get(1..).unwrap_or_default();
    }
    dst.put_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_borrows_without_backslash() {
        assert!(matches!(
            decode("plain", Escaping::V1_2),
            Cow::Borrowed("plain")
        ));
        assert!(matches!(
            decode("a\\cb", Escaping::None),
            Cow::Borrowed("a\\cb")
        ));
    }

    #[test]
    fn decode_maps_each_escape() {
        assert_eq!(decode("a\\cb\\nc\\\\d\\re", Escaping::V1_2), "a:b\nc\\d\re");
        // `\r` is not defined in 1.1; a lenient decoder keeps it verbatim.
        assert_eq!(decode("a\\re", Escaping::V1_1), "a\\re");
        assert_eq!(decode("é\\tü\\", Escaping::V1_2), "é\\tü\\");
    }

    #[test]
    fn check_finds_undefined_escapes_and_crs() {
        assert_eq!(check(b"a\\cb", Escaping::V1_1, false, false), Ok(()));
        assert_eq!(
            check(b"a\\tb", Escaping::V1_2, false, true),
            Err(Flaw::UndefinedEscape {
                at: 1,
                escape: Some(b't')
            })
        );
        assert_eq!(
            check(b"ab\\", Escaping::V1_2, false, true),
            Err(Flaw::UndefinedEscape {
                at: 2,
                escape: None
            })
        );
        assert_eq!(
            check(b"a\\re", Escaping::V1_1, false, false),
            Err(Flaw::UndefinedEscape {
                at: 1,
                escape: Some(b'r')
            })
        );
        assert_eq!(check(b"a\\tb", Escaping::V1_2, true, true), Ok(()));
        assert_eq!(
            check(b"a\rb", Escaping::V1_2, false, true),
            Err(Flaw::LoneCarriageReturn { at: 1 })
        );
        assert_eq!(check(b"a\rb", Escaping::V1_1, false, false), Ok(()));
        // An escaped backslash does not start another escape.
        assert_eq!(check(b"\\\\t", Escaping::V1_2, false, true), Ok(()));
    }

    #[test]
    fn decoded_eq_compares_without_allocating() {
        assert!(decoded_eq(b"x\\ckey", b"x:key", Escaping::V1_2));
        assert!(!decoded_eq(b"x\\ckey", b"x:ke", Escaping::V1_2));
        assert!(!decoded_eq(b"x\\ckey", b"x\\ckey", Escaping::V1_2));
        assert!(decoded_eq(b"x\\ckey", b"x\\ckey", Escaping::None));
    }

    #[test]
    fn escaping_round_trips() {
        let field = "a:b\nc\\d\re";
        let mut out = alloc::vec::Vec::new();
        put_escaped(&mut out, field.as_bytes(), Escaping::V1_2);
        assert_eq!(out, b"a\\cb\\nc\\\\d\\re");
        assert_eq!(escaped_len(field.as_bytes(), Escaping::V1_2), out.len());
        let raw = core::str::from_utf8(&out).unwrap();
        assert_eq!(decode(raw, Escaping::V1_2), field);
    }

    #[test]
    fn unrepresentable_octets() {
        use Field::{Name, Value};
        assert_eq!(
            unrepresentable(b"a:b", Name, Escaping::None, Version::V1_0),
            Some(b':')
        );
        assert_eq!(
            unrepresentable(b"a:b", Value, Escaping::None, Version::V1_0),
            None
        );
        assert_eq!(
            unrepresentable(b"a\nb", Value, Escaping::None, Version::V1_1),
            Some(b'\n')
        );
        assert_eq!(
            unrepresentable(b"a\rb", Value, Escaping::None, Version::V1_1),
            None
        );
        assert_eq!(
            unrepresentable(b"a\rb", Value, Escaping::None, Version::V1_2),
            Some(b'\r')
        );
        assert_eq!(
            unrepresentable(b"ab\r", Value, Escaping::V1_1, Version::V1_1),
            Some(b'\r')
        );
        assert_eq!(
            unrepresentable(b"ab\r", Name, Escaping::V1_1, Version::V1_1),
            None
        );
        assert_eq!(
            unrepresentable(b"a\r:\n", Value, Escaping::V1_2, Version::V1_2),
            None
        );
    }
}
