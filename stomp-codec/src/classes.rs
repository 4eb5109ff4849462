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
/// than eight are left. Where a match is, the lowest set bit of its class is exact; bits above
/// a true match may be set falsely.
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
#[inline]
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
        assert!(at(b"1234567", 0).is_none());
        assert_eq!(at(b"12345678", 0).map(|c| c.len), Some(8));
    }

    /// Each line's end, first colon, first backslash or CR, and whether any octet so far is
    /// not ASCII, found one octet at a time.
    fn reference(buf: &[u8]) -> Vec<(usize, Option<usize>, Option<usize>, bool)> {
        let (mut lines, mut start, mut non_ascii) = (Vec::new(), 0, false);
        for (i, &octet) in buf.iter().enumerate() {
            if octet == b'\n' {
                let line = &buf[start..i];
                let colon = line.iter().position(|&o| o == b':').map(|c| start + c);
                let special = line.iter().position(|&o| o == b'\\' || o == b'\r');
                non_ascii |= !line.is_ascii();
                lines.push((i, colon, special.map(|c| start + c), non_ascii));
                start = i + 1;
            }
        }
        lines
    }

    /// Finds the lines of `buf` whole, then as it grows one octet at a time, each search going
    /// on from where the last one stopped, as the scanner's do.
    fn check_lines(buf: &[u8]) {
        let expected = reference(buf);
        for grow in [false, true] {
            let (mut from, mut marks, mut found) = (0, Marks::default(), Vec::new());
            let mut end = if grow { 0 } else { buf.len() };
            while found.len() < expected.len() {
                match line_end(&buf[..end], from, &mut marks) {
                    Some(eol) => {
                        found.push((eol, marks.colon, marks.special, marks.non_ascii));
                        marks.next_line();
                        from = eol + 1;
                    }
                    None => {
                        from = end;
                        end += 1;
                    }
                }
            }
            assert_eq!(found, expected, "{buf:?}, growing: {grow}");
        }
    }

    #[test]
    fn lines_are_found_alike_whole_and_growing_one_octet_at_a_time() {
        // Lines of every length, across runs, with the octets that can fool a word-at-a-time
        // test beside line ends and colons.
        let pieces: [&[u8]; 8] = [b"a", b":", b"\\", b"\r", b"\x0b", b"\xc3\xa9", b";", b"\n"];
        let mut buf = Vec::new();
        let mut seed = 7u32;
        while buf.len() < 2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            buf.extend_from_slice(pieces[(seed >> 16) as usize % pieces.len()]);
        }
        buf.push(b'\n');
        check_lines(&buf);
        for len in 1..40 {
            for start in (0..300).step_by(7) {
                check_lines(&buf[start..start + len]);
            }
        }
    }
}
