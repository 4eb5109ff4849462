//! The grammar of one complete line of a frame's head, in nom's complete mode
//! (1.2 "Augmented BNF"). Lines reach these parsers without their EOL.

use nom::Parser;
use nom::character::complete::u64 as decimal;
use nom::combinator::all_consuming;
use nom::error::Error as NomError;

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
