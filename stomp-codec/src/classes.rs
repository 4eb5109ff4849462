//! What a head line's scan looks for, as one bit per octet: line ends, colons, backslashes and
//! CRs, and octets that are not ASCII.
//!
//! The head is classified sixty-four octets at a time into [`Block`]s, and its lines are then
//! found with bit operations on the block's masks: a block holds the ends of several lines, and
//! each octet is classified once. With SSE2 (every x86_64) a block is four runs of sixteen
//! octets, one compare and one move-mask per class, through `safe_arch`, which wraps the
//! intrinsics so that nothing here is `unsafe`; elsewhere it is eight words ([`swar`]).

use crate::escape;
use crate::version::Escaping;

/// The octets a block classifies.
const BLOCK: usize = 64;

/// The classes of up to sixty-four consecutive octets, bit `i` for octet `i`. Every bit is
/// exact, so a block can be read from any octet on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Block {
    lf: u64,
    colon: u64,
    /// Backslashes and CRs: a line with one needs unescaping or a look at its end.
    special: u64,
    /// Octets with the high bit set: not ASCII.
    high: u64,
}

impl Block {
    /// The block of the octets of `buf` from `at` on, and how many octets it covers: sixty-four,
    /// or what is left of `buf`. A buffer shorter than a block is classified as if zeros
    /// followed it, which belong to no class. Kept out of line: the search that calls it is cheap when the block it has is
    /// enough, and should not pay for this one's frame on every call.
    #[inline(never)]
    fn of(buf: &[u8], at: usize) -> (Block, usize) {
        let rest = buf.get(at..).unwrap_or_default();
        if let Some(octets) = rest.first_chunk::<BLOCK>() {
            return (Block::classify(octets), BLOCK);
        }
        // Near the end of a long buffer, its last block less the octets before `at`: the bits
        // are exact, so theirs are simply shifted out.
        let last = buf.len().checked_sub(BLOCK).and_then(|last| {
            let octets = buf.get(last..)?.first_chunk::<BLOCK>()?;
            Some((last, octets))
        });
        if let Some((last, octets)) = last.filter(|_| !rest.is_empty()) {
            return (Block::classify(octets).skip(at - last), rest.len());
        }
        let mut padded = [0u8; BLOCK];
        if let Some(head) = padded.get_mut(..rest.len()) {
            head.copy_from_slice(rest);
        }
        (Block::classify(&padded), rest.len())
    }

    /// The same block without its first `n` octets, fewer than a block.
    fn skip(self, n: usize) -> Block {
        Block {
            lf: self.lf >> n,
            colon: self.colon >> n,
            special: self.special >> n,
            high: self.high >> n,
        }
    }

    fn classify(octets: &[u8; BLOCK]) -> Block {
        #[cfg(all(
            any(target_arch = "x86", target_arch = "x86_64"),
            target_feature = "sse2"
        ))]
        return Block::runs(octets);
        #[cfg(not(all(
            any(target_arch = "x86", target_arch = "x86_64"),
            target_feature = "sse2"
        )))]
        return Block::words(octets);
    }

    /// Four runs of sixteen octets.
    #[cfg(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse2"
    ))]
    fn runs(octets: &[u8; BLOCK]) -> Block {
        use safe_arch::{
            cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
        };
        let mut block = Block::default();
        for (i, run) in octets.chunks_exact(16).enumerate() {
            let Ok(run) = <&[u8; 16]>::try_from(run) else {
                continue;
            };
            let run = load_unaligned_m128i(run);
            // The move-mask of sixteen octets fills the low 16 bits: never negative.
            let mask = |octet: u8| {
                let splat = set_splat_i8_m128i(i8::from_ne_bytes([octet]));
                u64::from(move_mask_i8_m128i(cmp_eq_mask_i8_m128i(run, splat)).unsigned_abs())
            };
            let shift = 16 * i;
            block.lf |= mask(b'\n') << shift;
            block.colon |= mask(b':') << shift;
            block.special |= (mask(b'\\') | mask(b'\r')) << shift;
            block.high |= u64::from(move_mask_i8_m128i(run).unsigned_abs()) << shift;
        }
        block
    }

    /// Eight words of eight octets.
    #[cfg(any(
        test,
        not(all(
            any(target_arch = "x86", target_arch = "x86_64"),
            target_feature = "sse2"
        ))
    ))]
    fn words(octets: &[u8; BLOCK]) -> Block {
        use crate::swar;
        let mut block = Block::default();
        for (i, word) in octets.chunks_exact(8).enumerate() {
            let Ok(word) = <[u8; 8]>::try_from(word) else {
                continue;
            };
            let word = u64::from_le_bytes(word);
            let mask = |octet: u8| u64::from(swar::bits(swar::octets_exactly_equal(word, octet)));
            let shift = 8 * i;
            block.lf |= mask(b'\n') << shift;
            block.colon |= mask(b':') << shift;
            block.special |= (mask(b'\\') | mask(b'\r')) << shift;
            block.high |= u64::from(swar::bits(word & swar::HIGHS)) << shift;
        }
        block
    }
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
    /// Forgets what the line showed, for the next line.
    pub(crate) fn next_line(&mut self) {
        self.colon = None;
        self.special = None;
        self.doubtful = false;
    }
}

/// Judges the backslashes and CRs of `buf` at `at` plus the bits set in `specials`, in order.
/// Kept out of line: most lines have none.
#[inline(never)]
fn judge(buf: &[u8], at: usize, mut specials: u64, rules: Rules, marks: &mut Marks) {
    while specials != 0 {
        let pos = at + specials.trailing_zeros() as usize;
        specials &= specials - 1;
        if pos < marks.escaped_to {
            continue;
        }
        let next = buf.get(pos + 1).copied();
        let good = match (buf.get(pos), rules.escaping) {
            (Some(b'\\'), None) => true,
            (Some(b'\\'), Some(escaping)) => {
                let defined = next.and_then(|e| escape::unescape(escaping, e)).is_some();
                if defined {
                    marks.escaped_to = pos + 2;
                }
                defined
            }
            // A CR is the first half of the EOL where an LF follows it.
            (Some(b'\r'), _) => !rules.reject_cr || next == Some(b'\n'),
            _ => false,
        };
        marks.doubtful |= !good;
    }
}

/// A search of head lines one after another, a block at a time: it keeps the block it
/// classified last, which often holds the ends of the next lines too.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LineSearch {
    /// Octets before this offset have been searched.
    pos: usize,
    block: Block,
    /// The offset of the block's first octet.
    block_at: usize,
    /// The octets the block covers.
    block_len: usize,
}

impl LineSearch {
    /// A search that starts at `pos`.
    pub(crate) fn from(pos: usize) -> LineSearch {
        LineSearch {
            pos,
            ..LineSearch::default()
        }
    }

    /// Where the search goes on: octets before it have been searched.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Searches `buf` on for the LF that ends the current line, noting the line's first colon
    /// and first backslash or CR in `marks` on the way, and judging each backslash and CR by
    /// `rules`. The search goes on after that LF next time. `None`: the buffer ends before the line does, `marks` holds what the octets up to
    /// its end showed, and the search goes on from there once the buffer has grown (whose
    /// octets so far must not change).
    #[inline]
    pub(crate) fn line_end(
        &mut self,
        buf: &[u8],
        marks: &mut Marks,
        rules: Rules,
    ) -> Option<usize> {
        loop {
            if self.pos >= self.block_at + self.block_len {
                let (block, len) = Block::of(buf, self.pos);
                if len == 0 {
                    return None;
                }
                (self.block, self.block_at, self.block_len) = (block, self.pos, len);
            }
            let at = self.pos;
            // The octets before `at` have been searched: shifted out. Less than a block.
            let shift = at - self.block_at;
            let lf = self.block.lf >> shift;
            // Only the octets before the line's end belong to this line: every bit below the
            // lowest LF, or all of them when there is none.
            let mine = lf.wrapping_sub(1) & !lf;
            marks.non_ascii |= (self.block.high >> shift) & mine != 0;
            if marks.colon.is_none() {
                let colon = (self.block.colon >> shift) & mine;
                if colon != 0 {
                    marks.colon = Some(at + colon.trailing_zeros() as usize);
                }
            }
            let specials = (self.block.special >> shift) & mine;
            if specials != 0 {
                if marks.special.is_none() {
                    marks.special = Some(at + specials.trailing_zeros() as usize);
                }
                if rules.judge_any() {
                    judge(buf, at, specials, rules, marks);
                }
            }
            if lf != 0 {
                let eol = at + lf.trailing_zeros() as usize;
                self.pos = eol + 1;
                return Some(eol);
            }
            self.pos = self.block_at + self.block_len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_found_at_every_position_of_whole_and_partial_blocks() {
        for len in [1usize, 15, 16, 17, 63, 64, 80] {
            for position in 0..len.min(BLOCK) {
                for (octet, class) in [(b'\n', 0), (b':', 1), (b'\\', 2), (b'\r', 2), (0xc3, 3)] {
                    let mut octets = vec![b'a'; len];
                    octets[position] = octet;
                    let (block, covered) = Block::of(&octets, 0);
                    assert_eq!(covered, len.min(BLOCK));
                    let masks = [block.lf, block.colon, block.special, block.high];
                    for (i, mask) in masks.into_iter().enumerate() {
                        let expected = if i == class { 1 << position } else { 0 };
                        assert_eq!(mask, expected, "{len} {octet} {position} class {i}");
                    }
                }
            }
        }
        assert_eq!(Block::of(b"abc", 3), (Block::default(), 0));
        assert_eq!(Block::of(b"abc", 4), (Block::default(), 0));
    }

    #[test]
    fn runs_and_words_classify_alike() {
        let mut seed = 11u32;
        for _ in 0..2000 {
            let mut octets = [0u8; BLOCK];
            for octet in &mut octets {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                // Mostly the octets of the classes and their neighbours.
                let pick = [b'\n', b':', b'\\', b'\r', 0x0b, b';', 0x80, 0xff, b'a', 0];
                *octet = pick[(seed >> 16) as usize % pick.len()];
            }
            #[cfg(all(
                any(target_arch = "x86", target_arch = "x86_64"),
                target_feature = "sse2"
            ))]
            assert_eq!(Block::runs(&octets), Block::words(&octets), "{octets:?}");
            let block = Block::words(&octets);
            for (i, &octet) in octets.iter().enumerate() {
                assert_eq!(block.lf >> i & 1 == 1, octet == b'\n');
                assert_eq!(block.colon >> i & 1 == 1, octet == b':');
                assert_eq!(
                    block.special >> i & 1 == 1,
                    octet == b'\\' || octet == b'\r'
                );
                assert_eq!(block.high >> i & 1 == 1, octet >= 0x80);
            }
        }
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

    /// Finds the lines of `buf` whole, then as it grows one octet at a time, by every rule. A
    /// line found whole is doubtful exactly when it has a flaw; one found as it grows may be
    /// doubtful without, where an escape was cut in two.
    fn check_lines(buf: &[u8]) {
        for arguments in RULES {
            let expected = reference(buf, arguments);
            let rules = Rules::new(arguments.0, arguments.1, arguments.2);
            for grow in [false, true] {
                let mut search = LineSearch::default();
                let (mut marks, mut found) = (Marks::default(), Vec::new());
                let mut end = if grow { 0 } else { buf.len() };
                while found.len() < expected.len() {
                    match search.line_end(&buf[..end], &mut marks, rules) {
                        Some(eol) => {
                            let line = (eol, marks.colon, marks.special, marks.non_ascii);
                            let (l, flawed) = (expected[found.len()], expected[found.len()].4);
                            assert!(marks.doubtful >= flawed, "{buf:?} {arguments:?} {l:?}");
                            let doubtful = if grow { flawed } else { marks.doubtful };
                            found.push((line.0, line.1, line.2, line.3, doubtful));
                            marks.next_line();
                        }
                        None => end += 1,
                    }
                }
                assert_eq!(found, expected, "{buf:?} {arguments:?}, growing: {grow}");
            }
        }
    }

    #[test]
    fn lines_are_found_alike_whole_and_growing_one_octet_at_a_time() {
        // Lines of every length, across block boundaries, with the octets that can fool an
        // inexact word-at-a-time test beside line ends and colons.
        let pieces: [&[u8]; 10] = [
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
        ];
        let mut buf = Vec::new();
        let mut seed = 7u32;
        while buf.len() < 2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            buf.extend_from_slice(pieces[(seed >> 16) as usize % pieces.len()]);
        }
        buf.push(b'\n');
        check_lines(&buf);
        for len in 1..70 {
            for start in (0..300).step_by(7) {
                check_lines(&buf[start..start + len]);
            }
        }
    }
}
