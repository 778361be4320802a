//! Byte positions in the source: whitespace skipping, trimming, grapheme boundaries, and the
//! byte-to-char offset conversion.

use std::iter;

use unicode_segmentation::GraphemeCursor;

/// The first position `>= pos` (and `<= end`) that is not whitespace.
pub(crate) fn skip_ws(text: &str, pos: usize, end: usize) -> usize {
    text[pos..end].char_indices().find(|(_, c)| !c.is_whitespace()).map_or(end, |(i, _)| pos + i)
}

/// The end of `text[start..end]` once trailing whitespace is removed.
pub(crate) fn trim_end(text: &str, start: usize, end: usize) -> usize {
    start + text[start..end].trim_end().len()
}

pub(crate) fn is_grapheme_boundary(text: &str, pos: usize) -> bool {
    text.is_char_boundary(pos) && GraphemeCursor::new(pos, text.len(), true).is_boundary(text, 0).unwrap_or(false)
}

/// The grapheme boundaries after `pos`, in order, judged with the whole text as context (a
/// substring's own segmentation can differ: flags and emoji sequences depend on what precedes).
pub(crate) fn grapheme_boundaries_after(text: &str, pos: usize) -> impl Iterator<Item = usize> + '_ {
    let mut cursor = GraphemeCursor::new(pos, text.len(), true);
    iter::from_fn(move || cursor.next_boundary(text, 0).ok().flatten())
}

/// Converts increasing byte offsets to char offsets in one pass over the text.
#[derive(Debug)]
pub(crate) struct CharCursor<'t> {
    text: &'t str,
    byte: usize,
    chars: usize,
}

impl<'t> CharCursor<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        CharCursor { text, byte: 0, chars: 0 }
    }

    /// The char offset of byte offset `pos` (a char boundary). Cheap when positions increase;
    /// a smaller position restarts from the beginning.
    pub(crate) fn char_offset(&mut self, pos: usize) -> usize {
        if pos < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self.text[self.byte..pos].chars().count();
        self.byte = pos;
        self.chars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_helpers() {
        let t = "  ab \r\n c ";
        assert_eq!(skip_ws(t, 0, t.len()), 2);
        assert_eq!(skip_ws(t, 4, t.len()), 8);
        assert_eq!(skip_ws(t, 9, t.len()), 10);
        assert_eq!(trim_end(t, 2, 8), 4);
        assert_eq!(trim_end(t, 2, 9), 9);
    }

    #[test]
    fn graphemes_and_chars() {
        // e + combining acute, then a family emoji (ZWJ sequence).
        let t = "e\u{301}👨\u{200d}👩";
        assert!(is_grapheme_boundary(t, 0));
        assert!(!is_grapheme_boundary(t, 1));
        assert!(is_grapheme_boundary(t, 3));
        assert!(!is_grapheme_boundary(t, 7));
        assert!(!is_grapheme_boundary(t, 8));
        assert_eq!(grapheme_boundaries_after(t, 0).collect::<Vec<_>>(), [3, 14]);
        assert_eq!(grapheme_boundaries_after(t, 7).collect::<Vec<_>>(), [14]);
        // Flags pair regional indicators from the start of the text.
        let flags = "🇫🇷🇯🇵";
        assert_eq!(grapheme_boundaries_after(flags, 4).collect::<Vec<_>>(), [8, 16]);
        let mut cursor = CharCursor::new(t);
        assert_eq!(cursor.char_offset(3), 2);
        assert_eq!(cursor.char_offset(t.len()), 5);
        assert_eq!(cursor.char_offset(1), 1);
    }
}
