//! What a head line's scan looks for in a run of octets, as one bit per octet: line ends,
//! colons, backslashes and CRs, and octets that are not ASCII.
//!
//! Sixteen octets per run with SSE2 (every x86_64): one compare and one move-mask per class,
//! through `safe_arch`, which wraps the intrinsics so that nothing here is `unsafe`. Eight per
//! run elsewhere, and where fewer than sixteen octets are left, a word at a time ([`swar`]).

use crate::swar;

/// The classes of the octets of one run, bit `i` for octet `i`.
pub(crate) struct Classes {
    /// The run's length in octets.
    pub(crate) len: usize,
    pub(crate) lf: u32,
    pub(crate) colon: u32,
    /// Backslashes and CRs: a line with one needs unescaping or a look at its end.
    pub(crate) special: u32,
    /// Octets with the high bit set: not ASCII.
    pub(crate) high: u32,
}

/// The classes of the octets from `at` on: sixteen of them, or eight, or `None` when fewer
/// than eight are left. Where a match is, the lowest set bit of its class is exact; bits
/// above a true match may be set falsely.
pub(crate) fn at(buf: &[u8], at: usize) -> Option<Classes> {
    #[cfg(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse2"
    ))]
    if let Some(classes) = sse2(buf, at) {
        return Some(classes);
    }
    word(buf, at)
}

#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
))]
fn sse2(buf: &[u8], at: usize) -> Option<Classes> {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let octets: &[u8; 16] = buf.get(at..at.checked_add(16)?)?.try_into().ok()?;
    let run = load_unaligned_m128i(octets);
    // The move-mask of sixteen octets fills the low 16 bits: never negative.
    let mask = |octet: u8| {
        let equal = cmp_eq_mask_i8_m128i(run, set_splat_i8_m128i(i8::from_ne_bytes([octet])));
        move_mask_i8_m128i(equal).unsigned_abs()
    };
    Some(Classes {
        len: 16,
        lf: mask(b'\n'),
        colon: mask(b':'),
        special: mask(b'\\') | mask(b'\r'),
        high: move_mask_i8_m128i(run).unsigned_abs(),
    })
}

fn word(buf: &[u8], at: usize) -> Option<Classes> {
    let word = swar::word_at(buf, at)?;
    let mask = |octet: u8| swar::bits(swar::octets_equal(word, octet));
    Some(Classes {
        len: 8,
        lf: mask(b'\n'),
        colon: mask(b':'),
        special: mask(b'\\') | mask(b'\r'),
        high: swar::bits(word & swar::HIGHS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_found_at_every_position_of_both_run_lengths() {
        for len in [8usize, 16, 20] {
            for position in 0..len.min(16) {
                for (octet, class) in [(b'\n', 0), (b':', 1), (b'\\', 2), (b'\r', 2), (0xc3, 3)] {
                    let mut octets = vec![b'a'; len];
                    octets[position] = octet;
                    let classes = at(&octets, 0).unwrap();
                    let masks = [classes.lf, classes.colon, classes.special, classes.high];
                    for (i, mask) in masks.into_iter().enumerate() {
                        if i == class && position < classes.len {
                            assert_eq!(mask.trailing_zeros() as usize, position, "{len} {octet}");
                        } else {
                            assert_eq!(mask, 0, "{len} {octet} {position} class {i}");
                        }
                    }
                }
            }
        }
        assert!(at(b"1234567", 0).is_none());
        assert_eq!(at(b"12345678", 0).map(|c| c.len), Some(8));
    }
}
