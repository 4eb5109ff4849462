//! The grammar of one complete line of a frame's head, in nom's complete mode
//! (1.2 "Augmented BNF"). Lines reach these parsers without their EOL.

use nom::bytes::complete::tag;
use nom::character::complete::u64 as decimal;
use nom::combinator::{all_consuming, rest};
use nom::error::{Error as NomError, ErrorKind};
use nom::sequence::separated_pair;
use nom::{IResult, Parser};

/// Everything before the first colon. Header names are a few octets long: a plain loop finds
/// the colon sooner than a SIMD search would set itself up.
fn until_colon(input: &[u8]) -> IResult<&[u8], &[u8]> {
    match input.iter().position(|&octet| octet == b':') {
        Some(i) => Ok((
            input.get(i..).unwrap_or_default(),
            input.get(..i).unwrap_or_default(),
        )),
        None => Err(nom::Err::Error(NomError::new(input, ErrorKind::Char))),
    }
}

/// `header = name ":" value`, split at the FIRST colon: real peers put raw colons in values
/// (ActiveMQ message ids, URLs in 1.0 frames). `None` when the line has no colon.
pub(crate) fn header_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    separated_pair(until_colon, tag(&b":"[..]), rest)
        .parse(line)
        .ok()
        .map(|(_, pair)| pair)
}

/// A `content-length` value: a plain decimal number that fits in `usize`; no sign, no spaces
/// (1.2 "Header content-length").
pub(crate) fn content_length(value: &[u8]) -> Option<usize> {
    let (_, n) = all_consuming(decimal::<_, NomError<&[u8]>>)
        .parse(value)
        .ok()?;
    usize::try_from(n).ok()
}

/// A line without its trailing CR: an EOL is LF or CR LF. CR LF is accepted on every version,
/// as real 1.0 and 1.1 peers send it.
pub(crate) fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_first_colon() {
        assert_eq!(header_line(b"a:b:c"), Some((&b"a"[..], &b"b:c"[..])));
        assert_eq!(header_line(b"a:"), Some((&b"a"[..], &b""[..])));
        assert_eq!(header_line(b":v"), Some((&b""[..], &b"v"[..])));
        assert_eq!(header_line(b"novalue"), None);
        assert_eq!(
            header_line(b"foo : bar "),
            Some((&b"foo "[..], &b" bar "[..]))
        );
    }

    #[test]
    fn content_length_is_plain_decimal() {
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(content_length(b"007"), Some(7));
        assert_eq!(
            content_length(b"18446744073709551615"),
            usize::try_from(u64::MAX).ok()
        );
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"+1",
            b"-1",
            b"1a",
            b"0x10",
            b"18446744073709551616",
        ] {
            assert_eq!(content_length(bad), None, "{:?}", core::str::from_utf8(bad));
        }
    }
}
