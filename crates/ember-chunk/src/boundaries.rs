//! Where a section may be cut, level by level, coarsest first.
//!
//! A boundary is the byte position where the next unit starts (after the separator), so a chunk
//! `[start, boundary)` ends with the unit and its trailing whitespace, which trimming removes.
//! Each level's list holds the positions of all coarser levels too, is sorted, and ends with the
//! section's end.

use std::cell::OnceCell;
use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

/// The structural levels, coarsest first. `Token` is the last resort inside one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Paragraph,
    Line,
    Sentence,
    Word,
    Token,
}

/// The levels with boundary lists, coarsest first.
pub(crate) const STRUCTURAL: [Level; 4] = [Level::Paragraph, Level::Line, Level::Sentence, Level::Word];

/// Sentence ends that need whitespace after them (Latin script).
const LATIN_TERMINATORS: [char; 4] = ['.', '!', '?', '…'];
/// Sentence ends that do not (CJK and full-width punctuation).
const CJK_TERMINATORS: [char; 7] = ['。', '！', '？', '；', '．', '｡', '︒'];
/// Closing quotes and brackets that stay with the sentence they end.
const CLOSERS: [char; 16] = ['"', '\'', ')', ']', '}', '’', '”', '»', '」', '』', '）', '】', '〕', '〉', '》', '〗'];

/// The boundary lists of one section, each built on first use.
#[derive(Debug)]
pub(crate) struct Boundaries<'t> {
    text: &'t str,
    range: Range<usize>,
    /// Paragraph, line and sentence boundaries up to here (inclusive) are dropped: they would
    /// separate a heading from its content.
    glue_end: usize,
    levels: [OnceCell<Vec<usize>>; 4],
}

impl<'t> Boundaries<'t> {
    pub(crate) fn new(text: &'t str, range: Range<usize>, glue_end: usize) -> Self {
        Boundaries { text, range, glue_end, levels: Default::default() }
    }

    /// The sorted boundaries of a structural level (never `Token`), ending with the section end.
    pub(crate) fn get(&self, level: Level) -> &[usize] {
        let index = match level {
            Level::Paragraph => 0,
            Level::Line => 1,
            Level::Sentence => 2,
            Level::Word | Level::Token => 3,
        };
        self.levels[index].get_or_init(|| self.build(level))
    }

    fn build(&self, level: Level) -> Vec<usize> {
        let end = self.range.end;
        let glued = |mut v: Vec<usize>| {
            v.retain(|&p| p > self.glue_end || p == end);
            v
        };
        match level {
            Level::Paragraph => glued(paragraph_starts(self.text, self.range.clone())),
            Level::Line => glued(line_starts(self.text, self.range.clone())),
            Level::Sentence => glued(merge(self.get(Level::Line), &sentence_starts(self.text, self.range.clone()))),
            Level::Word | Level::Token => merge(self.get(Level::Sentence), &word_starts(self.text, self.range.clone())),
        }
    }
}

/// Sorted union without duplicates of two sorted lists.
fn merge(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x <= y => {
                i += 1;
                if x == y {
                    j += 1;
                }
                x
            }
            (_, Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

/// Starts of lines after a line break, inside the range, then the range end.
fn line_starts(text: &str, range: Range<usize>) -> Vec<usize> {
    let mut out: Vec<usize> =
        text[range.clone()].match_indices('\n').map(|(i, _)| range.start + i + 1).filter(|&p| p < range.end).collect();
    out.push(range.end);
    out
}

/// Starts of non-blank lines that follow a blank (whitespace-only) line, then the range end.
fn paragraph_starts(text: &str, range: Range<usize>) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = range.start;
    let mut after_blank = false;
    for line in text[range.clone()].split_inclusive('\n') {
        if line.trim().is_empty() {
            after_blank = true;
        } else {
            if after_blank && pos > range.start {
                out.push(pos);
            }
            after_blank = false;
        }
        pos += line.len();
    }
    out.push(range.end);
    out
}

/// Where the next sentence starts after each sentence end: after a run of terminators and closers,
/// and the whitespace that follows. A Latin terminator (`.!?…`) counts only when whitespace
/// follows (so `3.14` and `e.g.x` stay whole); a CJK one always.
fn sentence_starts(text: &str, range: Range<usize>) -> Vec<usize> {
    let s = &text[range.clone()];
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        let latin = LATIN_TERMINATORS.contains(&c);
        if !latin && !CJK_TERMINATORS.contains(&c) {
            continue;
        }
        let mut cjk = !latin;
        while let Some(&(_, n)) = chars.peek() {
            if CJK_TERMINATORS.contains(&n) {
                cjk = true;
            } else if !LATIN_TERMINATORS.contains(&n) && !CLOSERS.contains(&n) {
                break;
            }
            chars.next();
        }
        let mut saw_space = false;
        while chars.peek().is_some_and(|&(_, n)| n.is_whitespace()) {
            saw_space = true;
            chars.next();
        }
        let next = chars.peek().map_or(s.len(), |&(i, _)| i);
        if (cjk || saw_space) && next < s.len() {
            out.push(range.start + next);
        }
    }
    out
}

/// Starts of Unicode words (UAX #29): a segment after whitespace, or one that begins with a letter
/// or digit (so each CJK ideograph is a word, and `Hello,` stays whole).
fn word_starts(text: &str, range: Range<usize>) -> Vec<usize> {
    let mut out = Vec::new();
    let mut prev_space = false;
    for (i, seg) in text[range.clone()].split_word_bound_indices() {
        let first = seg.chars().next();
        let space = first.is_some_and(char::is_whitespace);
        if !space && i > 0 && (prev_space || first.is_some_and(char::is_alphanumeric)) {
            out.push(range.start + i);
        }
        prev_space = space;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces<'a>(text: &'a str, bounds: &[usize]) -> Vec<&'a str> {
        let mut start = 0;
        bounds
            .iter()
            .map(|&b| {
                let p = &text[start..b];
                start = b;
                p
            })
            .collect()
    }

    #[test]
    fn levels_nest() {
        let text = "One. Two three!\nFour\n\n  Five? Six";
        let b = Boundaries::new(text, 0..text.len(), 0);
        assert_eq!(pieces(text, b.get(Level::Paragraph)), ["One. Two three!\nFour\n\n", "  Five? Six"]);
        assert_eq!(pieces(text, b.get(Level::Line)), ["One. Two three!\n", "Four\n", "\n", "  Five? Six"]);
        assert_eq!(pieces(text, b.get(Level::Sentence)), ["One. ", "Two three!\n", "Four\n", "\n", "  Five? ", "Six"]);
        assert_eq!(
            pieces(text, b.get(Level::Word)),
            ["One. ", "Two ", "three!\n", "Four\n", "\n", "  ", "Five? ", "Six"]
        );
    }

    #[test]
    fn sentences_latin_and_cjk() {
        let text = "Pi is 3.14, e.g.x stays. \"Quoted.\" Next…  Done";
        assert_eq!(
            pieces(text, &[sentence_starts(text, 0..text.len()), vec![text.len()]].concat()),
            ["Pi is 3.14, e.g.x stays. ", "\"Quoted.\" ", "Next…  ", "Done"]
        );
        let text = "今天很好。我们走吧！「真的？」好；Ｏｋ．完";
        assert_eq!(
            pieces(text, &[sentence_starts(text, 0..text.len()), vec![text.len()]].concat()),
            ["今天很好。", "我们走吧！", "「真的？」", "好；", "Ｏｋ．", "完"]
        );
    }

    #[test]
    fn words_keep_punctuation_attached() {
        let text = "Hello, world (and) 你好吗 don't";
        let mut w = word_starts(text, 0..text.len());
        w.push(text.len());
        assert_eq!(pieces(text, &w), ["Hello, ", "world ", "(", "and) ", "你", "好", "吗 ", "don't"]);
    }

    #[test]
    fn glue_keeps_heading_with_content() {
        let text = "# Title\n\nBody. More.";
        let body = text.find("Body").unwrap();
        let b = Boundaries::new(text, 0..text.len(), body);
        assert_eq!(b.get(Level::Paragraph), [text.len()]);
        assert_eq!(b.get(Level::Line), [text.len()]);
        assert_eq!(b.get(Level::Sentence), [text.find("More").unwrap(), text.len()]);
        assert_eq!(b.get(Level::Word), [2, body, text.find("More").unwrap(), text.len()]);
    }

    #[test]
    fn crlf_lines() {
        let text = "a\r\nb\r\n\r\nc";
        let b = Boundaries::new(text, 0..text.len(), 0);
        assert_eq!(pieces(text, b.get(Level::Paragraph)), ["a\r\nb\r\n\r\n", "c"]);
        assert_eq!(pieces(text, b.get(Level::Line)), ["a\r\n", "b\r\n", "\r\n", "c"]);
    }
}
