//! What a head line's scan looks for in a run of octets, as one bit per octet: line ends,
//! colons, backslashes and CRs, and octets that are not ASCII.
//!
//! Sixteen octets per run with SSE2 (every x86_64): one compare and one move-mask per class,
//! through `safe_arch`, which wraps the intrinsics so that nothing here is `unsafe`. Eight per
//! run elsewhere, and where fewer than sixteen octets are left, a word at a time ([`swar`]).

use crate::escape;
use crate::swar;
use crate::version::Escaping;

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

/// How the backslashes and CRs of a line are judged as it is searched (1.2 "Value Encoding").
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rules {
    /// The escapes a backslash may start, or `None` when any backslash will do.
    escaping: Option<Escaping>,
    /// Whether a CR that does not end the line is refused (1.2).
    reject_cr: bool,
}

impl Rules {
    /// The rules of a frame escaped as `escaping`: undefined escapes refused unless
    /// `keep_undefined`, and raw CRs refused if `reject_cr`.
    pub(crate) fn new(escaping: Escaping, keep_undefined: bool, reject_cr: bool) -> Rules {
        let judged = escaping != Escaping::None && !keep_undefined;
        Rules {
            escaping: judged.then_some(escaping),
            reject_cr,
        }
    }

    fn judge_any(&self) -> bool {
        self.escaping.is_some() || self.reject_cr
    }
}

/// What the search of a head line has noted so far: offsets are into the searched buffer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Marks {
    /// The line's first colon, which ends the header name (1.2 "Augmented BNF").
    pub(crate) colon: Option<usize>,
    /// The line's first backslash or CR: a line without one has nothing to unescape.
    pub(crate) special: Option<usize>,
    /// Whether a backslash or CR of the line could not be judged good by the [`Rules`] as it
    /// was searched: an undefined escape, a raw CR, or an escape whose second octet had not
    /// arrived. Such a line is checked again whole, which finds the flaw if there is one.
    pub(crate) doubtful: bool,
    /// Octets before this offset belong to an escape judged good: `\\` is one escape.
    escaped_to: usize,
    /// Whether any octet searched is not ASCII. It is not reset by a new line.
    pub(crate) non_ascii: bool,
}

impl Marks {
    /// Forgets what the line showed (its colon, its first special octet, any doubt), for the
    /// next line.
    pub(crate) fn next_line(&mut self) {
        self.colon = None;
        self.special = None;
        self.doubtful = false;
    }
}

/// Judges the octets of `buf` at `at` plus each bit set in `specials`, in order: each is a
/// backslash or a CR, or, from a word-at-a-time run, an octet that only seemed one. Octets
/// before `escaped_to` belong to an escape judged good already. Returns where the escapes
/// judged good now end, and whether every octet was judged good. Kept out of line: most lines
/// have neither; and it takes and returns values rather than the [`Marks`], so that the search
/// can keep those in registers.
#[inline(never)]
fn judge(
    buf: &[u8],
    at: usize,
    mut specials: u32,
    rules: Rules,
    mut escaped_to: usize,
) -> (usize, bool) {
    let mut all_good = true;
    while specials != 0 {
        let pos = at + specials.trailing_zeros() as usize;
        specials &= specials - 1;
        if pos < escaped_to {
            continue;
        }
        let next = buf.get(pos + 1).copied();
        let good = match (buf.get(pos), rules.escaping) {
            (Some(b'\\'), None) => true,
            (Some(b'\\'), Some(escaping)) => {
                let defined = next.and_then(|e| escape::unescape(escaping, e)).is_some();
                if defined {
                    escaped_to = pos + 2;
                }
                defined
            }
            // A CR is the first half of the EOL where an LF follows it.
            (Some(b'\r'), _) => !rules.reject_cr || next == Some(b'\n'),
            _ => true,
        };
        all_good &= good;
    }
    (escaped_to, all_good)
}

/// Searches `buf` from `from` for the LF that ends a head line, a run of octets at a time,
/// noting the line's first colon and first backslash or CR in `marks` on the way and judging
/// each backslash and CR by `rules`. `None`: the buffer ends before the line does, and `marks`
/// holds what the octets up to its end showed.
#[inline]
pub(crate) fn line_end(buf: &[u8], from: usize, marks: &mut Marks, rules: Rules) -> Option<usize> {
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
        let specials = run.special & mine;
        if specials != 0 {
            if marks.special.is_none() {
                marks.special = Some(at + specials.trailing_zeros() as usize);
            }
            if rules.judge_any() {
                judge_into(buf, at, specials, rules, marks);
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
            b'\\' | b'\r' => {
                marks.special = marks.special.or(Some(at + i));
                if rules.judge_any() {
                    judge_into(buf, at + i, 1, rules, marks);
                }
            }
            _ => marks.non_ascii |= !octet.is_ascii(),
        }
    }
    None
}

/// [`judge`], its answer noted in `marks`.
#[inline(always)]
fn judge_into(buf: &[u8], at: usize, specials: u32, rules: Rules, marks: &mut Marks) {
    let (escaped_to, all_good) = judge(buf, at, specials, rules, marks.escaped_to);
    marks.escaped_to = escaped_to;
    marks.doubtful |= !all_good;
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

    /// The rules a line is judged by, with the arguments `escape::check` takes for them.
    const RULES: [(Escaping, bool, bool); 5] = [
        (Escaping::V1_2, false, true),
        (Escaping::V1_1, false, false),
        (Escaping::V1_2, true, true),
        (Escaping::V1_1, true, false),
        (Escaping::None, false, false),
    ];

    type Line = (usize, Option<usize>, Option<usize>, bool, bool);

    /// Each line's end, first colon, first backslash or CR, whether any octet so far is not
    /// ASCII, and whether it has a flaw by `rules`, found one octet at a time.
    fn reference(buf: &[u8], (escaping, keep, reject_cr): (Escaping, bool, bool)) -> Vec<Line> {
        let (mut lines, mut start, mut non_ascii) = (Vec::new(), 0, false);
        for (i, &octet) in buf.iter().enumerate() {
            if octet == b'\n' {
                let line = &buf[start..i];
                let colon = line.iter().position(|&o| o == b':').map(|c| start + c);
                let special = line.iter().position(|&o| o == b'\\' || o == b'\r');
                non_ascii |= !line.is_ascii();
                let content = line.strip_suffix(b"\r").unwrap_or(line);
                let flawed = escape::check(content, escaping, keep, reject_cr).is_err();
                lines.push((i, colon, special.map(|c| start + c), non_ascii, flawed));
                start = i + 1;
            }
        }
        lines
    }

    /// Finds the lines of `buf` whole, then as it grows one octet at a time, each search going
    /// on from where the last one stopped, as the scanner's do, by every rule. A line found
    /// whole is doubtful exactly when it has a flaw; one found as it grows may be doubtful
    /// without, where an escape was cut in two.
    fn check_lines(buf: &[u8]) {
        for arguments in RULES {
            let expected = reference(buf, arguments);
            let rules = Rules::new(arguments.0, arguments.1, arguments.2);
            for grow in [false, true] {
                let (mut from, mut marks, mut found) = (0, Marks::default(), Vec::new());
                let mut end = if grow { 0 } else { buf.len() };
                while found.len() < expected.len() {
                    match line_end(&buf[..end], from, &mut marks, rules) {
                        Some(eol) => {
                            let flawed = expected[found.len()].4;
                            assert!(marks.doubtful >= flawed, "{buf:?} {arguments:?} {eol}");
                            let doubtful = if grow { flawed } else { marks.doubtful };
                            let line = (eol, marks.colon, marks.special, marks.non_ascii);
                            found.push((line.0, line.1, line.2, line.3, doubtful));
                            marks.next_line();
                            from = eol + 1;
                        }
                        None => {
                            from = end;
                            end += 1;
                        }
                    }
                }
                assert_eq!(found, expected, "{buf:?} {arguments:?}, growing: {grow}");
            }
        }
    }

    #[test]
    fn lines_are_found_alike_whole_and_growing_one_octet_at_a_time() {
        // Lines of every length, across runs, with the octets that can fool a word-at-a-time
        // test beside line ends, colons, backslashes and CRs (`]` and 0x0c differ from the last
        // two in their lowest bit, which a borrow can set falsely).
        let pieces: [&[u8]; 12] = [
            b"a",
            b":",
            b"\\",
            b"\r",
            b"\x0b",
            b"\xc3\xa9",
            b";",
            b"\n",
            b"\\c",
            b"\\r",
            b"]",
            b"\x0c",
        ];
        let mut buf = Vec::new();
        let mut seed = 7u32;
        while buf.len() < 2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            buf.extend_from_slice(pieces[(seed >> 16) as usize % pieces.len()]);
        }
        buf.push(b'\n');
        check_lines(&buf);
        // A word whose borrow sets a false bit after a true CR and after an escaped backslash.
        check_lines(b"ab:c\r\x0cd\n");
        check_lines(b"ab:c\\\\]d\n");
        for len in 1..40 {
            for start in (0..300).step_by(7) {
                check_lines(&buf[start..start + len]);
            }
        }
    }
}
