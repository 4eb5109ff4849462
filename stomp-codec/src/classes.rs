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

/// The classes of the octets from `at` on: sixteen of them, or with SSE2 as many as are left
/// of a buffer of sixteen or more, or eight, or `None` when fewer than eight are left. Where a
/// match is, the lowest set bit of its class is exact; bits above a true match may be set
/// falsely.
pub(crate) fn at(buf: &[u8], at: usize) -> Option<Classes> {
    #[cfg(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse2"
    ))]
    {
        // Near the end of the buffer, the last sixteen octets, less those before `at`: the
        // masks are exact, so those octets' bits are simply shifted out.
        let last = || {
            let start = buf.len().checked_sub(16)?;
            let skip = at.checked_sub(start).filter(|&skip| skip < 16)?;
            sse2(buf, start).map(|run| run.skip(skip))
        };
        if let Some(classes) = sse2(buf, at).or_else(last) {
            return Some(classes);
        }
    }
    word(buf, at)
}

impl Classes {
    /// The classes of the same run without its first `n` octets.
    #[cfg(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse2"
    ))]
    fn skip(self, n: usize) -> Classes {
        Classes {
            len: self.len - n,
            lf: self.lf >> n,
            colon: self.colon >> n,
            special: self.special >> n,
            high: self.high >> n,
        }
    }
}

/// What the search of a head line has noted so far: offsets are into the searched buffer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Marks {
    /// The line's first colon, which ends the header name (1.2 "Augmented BNF").
    pub(crate) colon: Option<usize>,
    /// The line's first backslash or CR: a line without one has nothing to unescape.
    pub(crate) special: Option<usize>,
    /// Whether any octet searched is not ASCII. It is not reset by a new line.
    pub(crate) non_ascii: bool,
}

impl Marks {
    /// Forgets the line's colon and special octet, for the next line.
    pub(crate) fn next_line(&mut self) {
        self.colon = None;
        self.special = None;
    }
}

/// Searches `buf` from `from` for the LF that ends a head line, noting the line's first colon
/// and first backslash or CR in `marks` on the way, a run of octets at a time. `None`: the
/// buffer ends before the line does, and `marks` holds what the octets up to its end showed.
pub(crate) fn line_end(buf: &[u8], from: usize, marks: &mut Marks) -> Option<usize> {
    let mut at = from;
    while let Some(run) = self::at(buf, at) {
        // Only the octets before the line's end belong to this line.
        let mine = if run.lf == 0 {
            u32::MAX
        } else {
            (1u32 << run.lf.trailing_zeros()) - 1
        };
        marks.non_ascii |= run.high & mine != 0;
        if marks.colon.is_none() {
            let colon = run.colon & mine;
            if colon != 0 {
                marks.colon = Some(at + colon.trailing_zeros() as usize);
            }
        }
        if marks.special.is_none() {
            let special = run.special & mine;
            if special != 0 {
                marks.special = Some(at + special.trailing_zeros() as usize);
            }
        }
        if run.lf != 0 {
            return Some(at + run.lf.trailing_zeros() as usize);
        }
        at += run.len;
    }
    // Fewer than eight octets are left: one at a time.
    for (i, &octet) in buf.get(at..).unwrap_or_default().iter().enumerate() {
        match octet {
            b'\n' => return Some(at + i),
            b':' if marks.colon.is_none() => marks.colon = Some(at + i),
            b'\\' | b'\r' if marks.special.is_none() => marks.special = Some(at + i),
            _ => marks.non_ascii |= !octet.is_ascii(),
        }
    }
    None
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
        // The end of a buffer of sixteen or more is one run, as long as what is left of it.
        #[cfg(all(
            any(target_arch = "x86", target_arch = "x86_64"),
            target_feature = "sse2"
        ))]
        for from in 0..20 {
            let mut octets = *b"abc:defghijklm\nopqrs";
            octets[from] = b'\n';
            let classes = at(&octets, from).unwrap();
            assert_eq!(classes.len, (octets.len() - from).min(16));
            assert_eq!(classes.lf.trailing_zeros(), 0, "{from}");
            assert_eq!(classes.colon, if from < 3 { 1 << (3 - from) } else { 0 });
        }
        assert!(at(b"1234567", 0).is_none());
        assert_eq!(at(b"12345678", 0).map(|c| c.len), Some(8));
    }
}
