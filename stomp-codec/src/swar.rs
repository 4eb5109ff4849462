//! Word-at-a-time octet search: eight octets per step in plain integer arithmetic.
//!
//! Header fields are a few dozen octets long, too short for a SIMD search to pay for setting
//! itself up on each one. Head lines are scanned sixteen octets at a time where SSE2 is there
//! ([`classes`](crate::classes)), and with these words elsewhere.

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
/// The high bit of every octet: set in a word exactly where an octet is not ASCII.
pub(crate) const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// The octets from `at` on, as a little-endian word, when eight are there.
pub(crate) fn word_at(buf: &[u8], at: usize) -> Option<u64> {
    let octets = buf.get(at..at.checked_add(8)?)?;
    <[u8; 8]>::try_from(octets).ok().map(u64::from_le_bytes)
}

/// A mask of the high bit of each octet of `word` equal to `octet`. Its lowest set bit marks
/// the first such octet; bits above a true match may be set falsely, never bits without one
/// below them.
pub(crate) fn octets_equal(word: u64, octet: u8) -> u64 {
    let x = word ^ (ONES * u64::from(octet));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The index (0 to 7) of the octet that a mask's lowest set bit marks.
pub(crate) fn first_index(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// One bit per octet of a mask of high bits (as [`octets_equal`] gives): bit `i` for octet
/// `i`, as a SIMD move-mask gives them.
pub(crate) fn bits(mask: u64) -> u32 {
    // Each octet's flag, at bit 8i once shifted down, lands at bit 56 + i of the product.
    let gathered = (mask >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    u32::try_from(gathered).unwrap_or_default()
}

/// A mask of the high bit of each octet of `word` below `limit` (at most 0x80), with the same
/// promise as [`octets_equal`]: its lowest set bit is exact.
fn octets_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// The first octet of a header field that may need an escape (1.2 "Value Encoding"): a colon,
/// a backslash, or a control octet, LF and CR among them; the caller escapes what needs it and
/// copies the other control octets. One test catches every control octet, so a word costs
/// three tests rather than four. Header fields are short: a word at a time beats a SIMD search,
/// which pays for setting itself up on every call. The last word overlaps the one before it
/// rather than going octet by octet.
pub(crate) fn find_escapable(field: &[u8]) -> Option<usize> {
    let matches =
        |word: u64| octets_below(word, 0x20) | octets_equal(word, b':') | octets_equal(word, b'\\');
    let len = field.len();
    if len < 8 {
        return field
            .iter()
            .position(|&octet| octet < 0x20 || octet == b':' || octet == b'\\');
    }
    let mut at = 0;
    while at + 8 <= len {
        let found = word_at(field, at).map_or(0, matches);
        if found != 0 {
            return Some(at + first_index(found));
        }
        at += 8;
    }
    if at == len {
        return None;
    }
    // The octets before `at` are known not to match: only those after count, and no match
    // below them can set a false bit.
    let last = len - 8;
    let fresh = !0u64 << (8 * (at - last));
    let found = word_at(field, last).map_or(0, matches) & fresh;
    (found != 0).then(|| last + first_index(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_match_is_exact_for_every_position_and_neighbour() {
        for position in 0..8 {
            for filler in [0u8, 1, b'9', b';', 0x7f, 0xff, b':' + 1, b':' - 1] {
                let mut octets = [filler; 8];
                octets[position] = b':';
                // Octets after the match take every troublesome value.
                for (i, o) in octets.iter_mut().enumerate().skip(position + 1) {
                    *o = [0u8, b':', 0xff, b';'][i % 4];
                }
                let mask = octets_equal(u64::from_le_bytes(octets), b':');
                assert_eq!(first_index(mask), position, "{octets:?}");
                assert_eq!(bits(mask).trailing_zeros() as usize, position);
            }
        }
        assert_eq!(octets_equal(u64::from_le_bytes(*b"abcdefgh"), b':'), 0);
        for len in 0..20 {
            let mut field = vec![b'a'; len];
            assert_eq!(find_escapable(&field), None);
            for at in 0..len {
                for octet in [b'\\', b':', b'\n', b'\r', 0, 0x1f] {
                    field[at] = octet;
                    assert_eq!(find_escapable(&field), Some(at), "{len} {at} {octet}");
                }
                field[at] = b' ';
                assert_eq!(find_escapable(&field), None, "{len} {at}");
                field[at] = 0xff;
                assert_eq!(find_escapable(&field), None, "{len} {at}");
                field[at] = b'a';
            }
        }
        assert_eq!(word_at(b"1234567", 0), None);
        assert_eq!(
            word_at(b"12345678", 0),
            Some(u64::from_le_bytes(*b"12345678"))
        );
    }
}
