//! The chunking walk: from a cursor, take the largest run of the coarsest units that fits the
//! budget, then step on (back by the overlap).

use std::iter;
use std::ops::Range;

use crate::boundaries::{Boundaries, Level, STRUCTURAL};
use crate::estimate::Estimator;
use crate::markdown::{self, Section};
use crate::span::{grapheme_boundaries_after, is_grapheme_boundary, skip_ws, trim_end, CharCursor};
use crate::{ChunkConfig, ChunkError, TextFormat, TokenCounter};

/// A piece of the source, ready to embed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// `source[byte_range]`: no leading or trailing whitespace, never empty.
    pub text: String,
    /// Byte offsets into the source `&str`.
    pub byte_range: Range<usize>,
    /// The same span in `char` offsets (Unicode scalar values), as JSON APIs count.
    pub char_range: Range<usize>,
    /// `counter.count(&text)`: tokens without special tokens.
    pub token_count: usize,
    /// The Markdown heading path of the chunk's section, outermost first (`["Intro", "Setup"]`);
    /// empty for plain text and for Markdown before its first heading.
    pub headings: Vec<String>,
}

/// Cuts documents into [`Chunk`]s of at most `max_tokens` tokens as counted by `C`.
///
/// Structure is preferred: from the current position the chunker takes the coarsest level
/// (paragraph, line, sentence, word) whose next unit fits, and as many units of that level as fit;
/// only a single word over budget is cut at token boundaries (grapheme boundaries when the counter
/// has no offsets). In Markdown, headings start sections that chunks never cross, and a heading is
/// not cut off from its section's content while that content fits beside it.
///
/// With `overlap_tokens > 0`, the next chunk of a section starts inside the previous one: at the
/// coarsest boundary whose tail holds between half and all of `overlap_tokens` (estimated), else at
/// the word (or, in a cut-up word, token) boundary with the largest tail within `overlap_tokens`.
/// The overlap is dropped when repeating it would force cutting a whole word that fits on its own.
///
/// Each section is tokenized once (with offsets where the counter has them) to estimate the count
/// of any span; every chunk kept is then counted for real, and a chunk over budget backs off to a
/// shorter boundary. The work is linear in the text, times a small factor for the overlap.
#[derive(Clone, Debug)]
pub struct Chunker<C> {
    counter: C,
    config: ChunkConfig,
}

impl<C: TokenCounter> Chunker<C> {
    /// Validates the configuration (`max_tokens > 0`, `overlap_tokens < max_tokens`).
    pub fn new(counter: C, config: ChunkConfig) -> Result<Self, ChunkError> {
        config.validate()?;
        Ok(Chunker { counter, config })
    }

    pub fn config(&self) -> &ChunkConfig {
        &self.config
    }

    pub fn counter(&self) -> &C {
        &self.counter
    }

    /// The chunks of `text`, in order. Empty or whitespace-only text gives no chunks.
    pub fn chunk(&self, text: &str) -> Vec<Chunk> {
        let sections = match self.config.format {
            TextFormat::Plain => vec![markdown::plain_section(text)],
            TextFormat::Markdown => markdown::sections(text),
        };
        // Starts increase and so do ends, each cursor moves forward only.
        let (mut starts, mut ends) = (CharCursor::new(text), CharCursor::new(text));
        let mut out = Vec::new();
        for section in &sections {
            for (range, token_count) in self.split_section(text, section) {
                out.push(Chunk {
                    text: text[range.clone()].to_string(),
                    char_range: starts.char_offset(range.start)..ends.char_offset(range.end),
                    byte_range: range,
                    token_count,
                    headings: section.headings.clone(),
                });
            }
        }
        out
    }

    /// The chunks of one section as (byte range, real token count).
    fn split_section(&self, text: &str, section: &Section) -> Vec<(Range<usize>, usize)> {
        let budget = self.config.max_tokens;
        let start = skip_ws(text, section.range.start, section.range.end);
        let end = trim_end(text, start, section.range.end);
        if start >= end {
            return Vec::new();
        }
        // One pass of the counter over the section: its count, and the estimator if it is too long.
        // (`offsets(..).len() == count(..)` is the counter's contract.)
        let whole = &text[start..end];
        let estimator = match self.counter.offsets(whole) {
            Some(offsets) if offsets.len() <= budget => return vec![(start..end, offsets.len())],
            Some(offsets) => Estimator::from_offsets(start, &offsets),
            None => {
                let n = self.counter.count(whole);
                if n <= budget {
                    return vec![(start..end, n)];
                }
                Estimator::from_atoms(text, start..end, &self.counter)
            }
        };
        let body_start = section.body_start.max(start);
        let walk = SectionWalk {
            text,
            counter: &self.counter,
            budget,
            overlap: self.config.overlap_tokens,
            end,
            body_start,
            bounds: Boundaries::new(text, start..end, body_start),
            estimator,
        };
        walk.run(start)
    }
}

/// Where a chunk ends, how many tokens it has, and the level it was cut at.
#[derive(Clone, Copy, Debug)]
struct Cut {
    end: usize,
    tokens: usize,
    level: Level,
}

/// The state of cutting one section that does not fit the budget whole.
struct SectionWalk<'a, C> {
    text: &'a str,
    counter: &'a C,
    budget: usize,
    overlap: usize,
    /// End of the (trimmed) section.
    end: usize,
    /// Overlaps do not start inside the section's heading lines.
    body_start: usize,
    bounds: Boundaries<'a>,
    estimator: Estimator,
}

impl<C: TokenCounter> SectionWalk<'_, C> {
    fn run(&self, start: usize) -> Vec<(Range<usize>, usize)> {
        let mut out = Vec::new();
        let mut s = start;
        let mut cut = self.cut_any(s);
        loop {
            out.push((s..cut.end, cut.tokens));
            let next = skip_ws(self.text, cut.end, self.end);
            if next >= self.end {
                return out;
            }
            (s, cut) = self.next_cut(s, cut, next);
        }
    }

    fn est(&self, a: usize, b: usize) -> usize {
        self.estimator.estimate(self.text, self.counter, a, b)
    }

    /// The first chunk from `s`: no overlap to place.
    fn cut_any(&self, s: usize) -> Cut {
        self.cut_structural(s, s).or_else(|| self.cut_token(s, s)).unwrap_or_else(|| self.forced(s))
    }

    /// The chunk after one that started at `prev_start` and ended at `prev.end`; `next` is the
    /// first non-whitespace position after it. Returns the new start and cut.
    fn next_cut(&self, prev_start: usize, prev: Cut, next: usize) -> (usize, Cut) {
        let overlap_start = if self.overlap > 0 { self.overlap_start(prev_start, prev) } else { None };
        if let Some(b) = overlap_start {
            if let Some(cut) = self.cut_structural(b, next) {
                return (b, cut);
            }
            // Inside a word that is being cut up anyway, keep cutting with the overlap.
            let words = self.bounds.get(Level::Word);
            if prev.level == Level::Token && words.binary_search(&next).is_err() {
                if let Some(cut) = self.cut_token(b, next) {
                    return (b, cut);
                }
            }
        }
        if let Some(cut) = self.cut_structural(next, next) {
            return (next, cut);
        }
        // The word at `next` is over budget on its own: it is cut, with the overlap if any.
        if let Some(b) = overlap_start {
            if let Some(cut) = self.cut_token(b, next) {
                return (b, cut);
            }
        }
        (next, self.cut_token(next, next).unwrap_or_else(|| self.forced(next)))
    }

    /// The chunk from `s` that ends at the furthest boundary after `m` of the coarsest level
    /// that has one within budget. `s <= m`, both at non-whitespace.
    fn cut_structural(&self, s: usize, m: usize) -> Option<Cut> {
        STRUCTURAL.into_iter().find_map(|level| {
            let all = self.bounds.get(level);
            let candidates = &all[all.partition_point(|&p| p <= m)..];
            let fitting = candidates.partition_point(|&c| self.est(s, c) <= self.budget);
            self.fit(s, candidates, fitting).map(|(end, tokens)| Cut { end, tokens, level })
        })
    }

    /// The chunk from `s` that cuts the word at `m` at the furthest token boundary (grapheme
    /// boundary without offsets) within budget, else at a char boundary.
    fn cut_token(&self, s: usize, m: usize) -> Option<Cut> {
        let words = self.bounds.get(Level::Word);
        let limit = words.get(words.partition_point(|&p| p <= m)).copied().unwrap_or(self.end);
        let fine = self.fine_boundaries(m, limit);
        let chars = self.text[m..limit].char_indices().skip(1).map(move |(i, _)| m + i).chain(iter::once(limit));
        self.fit_lazy(s, fine).or_else(|| self.fit_lazy(s, chars)).map(|(end, tokens)| Cut {
            end,
            tokens,
            level: Level::Token,
        })
    }

    /// One character, when even that is over budget (a character that alone tokenizes to more
    /// than `max_tokens` tokens): emitted anyway, so that nothing is lost.
    fn forced(&self, m: usize) -> Cut {
        let end = self.text[m..].chars().next().map_or(m, |c| m + c.len_utf8());
        Cut { end, tokens: self.counter.count(&self.text[m..end]), level: Level::Token }
    }

    /// Token starts that are grapheme boundaries (or, without offsets, grapheme boundaries) in
    /// `(after, limit)`, then `limit`.
    fn fine_boundaries(&self, after: usize, limit: usize) -> Box<dyn Iterator<Item = usize> + '_> {
        let text = self.text;
        match self.estimator.token_starts() {
            Some(starts) => Box::new(
                starts[starts.partition_point(|&p| p <= after)..]
                    .iter()
                    .copied()
                    .take_while(move |&p| p < limit)
                    .filter(move |&p| is_grapheme_boundary(text, p))
                    .chain(iter::once(limit)),
            ),
            None => Box::new(
                grapheme_boundaries_after(text, after).take_while(move |&p| p < limit).chain(iter::once(limit)),
            ),
        }
    }

    /// Of `candidates[..fitting]` (ends whose estimate is within budget), the last one whose chunk
    /// really is, as (trimmed end, real token count). A chunk over budget means the estimate was
    /// short by at least the excess: the next try aims that much lower.
    fn fit(&self, s: usize, candidates: &[usize], fitting: usize) -> Option<(usize, usize)> {
        let mut k = fitting;
        while k > 0 {
            let c = candidates[k - 1];
            let end = trim_end(self.text, s, c);
            let tokens = self.counter.count(&self.text[s..end]);
            if tokens <= self.budget {
                return Some((end, tokens));
            }
            let target = self.est(s, c).saturating_sub(tokens - self.budget);
            let lower = candidates[..k - 1].partition_point(|&x| self.est(s, x) <= target);
            k = lower.max(1).min(k - 1);
        }
        None
    }

    /// [`fit`](Self::fit) over a long lazy list of candidates: reads it in doubling steps until
    /// one is over budget, so a long word costs about as much as the chunk cut from it.
    fn fit_lazy(&self, s: usize, mut candidates: impl Iterator<Item = usize>) -> Option<(usize, usize)> {
        let mut read = Vec::new();
        let mut want = 1;
        loop {
            read.extend(candidates.by_ref().take(want - read.len()));
            let &last = read.last()?;
            if read.len() < want || self.est(s, last) > self.budget {
                break;
            }
            want *= 2;
        }
        let fitting = read.partition_point(|&c| self.est(s, c) <= self.budget);
        self.fit(s, &read, fitting)
    }

    /// Where the chunk after `[s, prev.end)` starts so that it repeats about `overlap` tokens.
    fn overlap_start(&self, s: usize, prev: Cut) -> Option<usize> {
        let e = prev.end;
        let half = self.overlap.div_ceil(2);
        // The first candidate whose tail fits the overlap, with its tail's estimate.
        let tail = |candidates: &[usize]| {
            let k = candidates.partition_point(|&c| self.est(c, e) > self.overlap);
            candidates.get(k).map(|&c| (c, self.est(c, e))).filter(|&(_, t)| t > 0)
        };
        let mut best: Option<(usize, usize)> = None;
        for level in STRUCTURAL {
            let all = self.bounds.get(level);
            let from = all.partition_point(|&p| p <= s || p < self.body_start);
            let to = all.partition_point(|&p| p < e);
            let Some((c, t)) = tail(all.get(from..to).unwrap_or_default()) else { continue };
            if t >= half {
                return Some(skip_ws(self.text, c, self.end));
            }
            if best.is_none_or(|(_, bt)| t > bt) {
                best = Some((c, t));
            }
        }
        if prev.level == Level::Token {
            let inside: Vec<usize> = self.fine_boundaries(s, e).filter(|&p| p < e).collect();
            if let Some((c, t)) = tail(&inside) {
                if best.is_none_or(|(_, bt)| t > bt) {
                    best = Some((c, t));
                }
            }
        }
        best.map(|(c, _)| skip_ws(self.text, c, self.end))
    }
}
