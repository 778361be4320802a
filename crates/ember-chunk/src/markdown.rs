//! Markdown sections: a heading line starts a section that runs to the next heading.
//!
//! Only what chunking needs is parsed: ATX headings (`## Title ##`, up to three spaces of indent),
//! setext headings (a one-line paragraph underlined with `===` or `---`), and fenced code blocks
//! (```` ``` ```` / `~~~`) and YAML front matter, inside which `# comment` or `key: value` over
//! `---` is not a heading.

use std::ops::Range;

use crate::span::skip_ws;

/// A run of the source that chunks never cross.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    /// Byte range in the source.
    pub range: Range<usize>,
    /// Where the content after the section's heading line(s) starts (the first non-whitespace
    /// byte, or `range.end`); `range.start` when the section has no heading. Cutting before this
    /// position would separate a heading from its content.
    pub body_start: usize,
    /// Heading path, outermost first.
    pub headings: Vec<String>,
}

/// The whole text as one section without headings.
pub(crate) fn plain_section(text: &str) -> Section {
    Section { range: 0..text.len(), body_start: 0, headings: Vec::new() }
}

#[derive(Debug)]
struct Heading {
    /// Start of the heading's first line.
    start: usize,
    /// End of the heading's last line (after its line break).
    end: usize,
    level: usize,
    text: String,
}

/// Splits Markdown into sections at headings. A heading with no content of its own before a
/// deeper heading stays with it (`# A` then `## B` then text is one section with path `[A, B]`).
pub(crate) fn sections(text: &str) -> Vec<Section> {
    let headings = headings(text);
    let mut out = Vec::new();
    let first_start = headings.first().map_or(text.len(), |h| h.start);
    if !text[..first_start].trim().is_empty() {
        out.push(Section { range: 0..first_start, body_start: 0, headings: Vec::new() });
    }
    let mut path: Vec<(usize, &str)> = Vec::new();
    let mut pending_start = None;
    for (i, h) in headings.iter().enumerate() {
        while path.last().is_some_and(|&(level, _)| level >= h.level) {
            path.pop();
        }
        path.push((h.level, &h.text));
        let next = headings.get(i + 1);
        let end = next.map_or(text.len(), |n| n.start);
        let start = pending_start.take().unwrap_or(h.start);
        if text[h.end..end].trim().is_empty() && next.is_some_and(|n| n.level > h.level) {
            pending_start = Some(start);
            continue;
        }
        out.push(Section {
            range: start..end,
            body_start: skip_ws(text, h.end, end),
            headings: path.iter().map(|&(_, t)| t.to_string()).collect(),
        });
    }
    out
}

/// Lines with their start offsets; each line keeps its line break.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').scan(0, |pos, line| {
        let start = *pos;
        *pos += line.len();
        Some((start, line))
    })
}

/// The line without its line break, and without up to three spaces of indent (`None` when it is
/// indented further: indented code).
fn unindented(line: &str) -> Option<&str> {
    let content = line.trim_end_matches(['\n', '\r']);
    let indent = content.len() - content.trim_start_matches(' ').len();
    (indent <= 3).then(|| &content[indent..])
}

/// `Some((char, run length))` when the line opens or closes a code fence.
fn fence(line: &str) -> Option<(char, usize)> {
    let c = line.chars().next().filter(|&c| c == '`' || c == '~')?;
    let run = line.len() - line.trim_start_matches(c).len();
    let info = &line[run..];
    (run >= 3 && !(c == '`' && info.contains('`'))).then_some((c, run))
}

/// `Some((level, text))` for an ATX heading line.
fn atx(line: &str) -> Option<(usize, String)> {
    let level = line.len() - line.trim_start_matches('#').len();
    let rest = &line[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    let without_closing = rest.trim_end_matches('#');
    let text = if without_closing.is_empty() {
        ""
    } else if without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        rest
    };
    Some((level, text.to_string()))
}

/// `Some(level)` for a setext underline (`==` or longer is level 1, `--` or longer level 2).
fn setext_underline(line: &str) -> Option<usize> {
    let t = line.trim_end();
    let c = t.chars().next()?;
    let level = match c {
        '=' => 1,
        '-' => 2,
        _ => return None,
    };
    (t.len() >= 2 && t.chars().all(|x| x == c)).then_some(level)
}

fn headings(text: &str) -> Vec<Heading> {
    let mut out = Vec::new();
    let mut open_fence: Option<(char, usize)> = None;
    // The previous line when it is the first (so far only) line of a paragraph: a setext
    // underline turns it into a heading.
    let mut paragraph_first: Option<(usize, &str)> = None;
    // Whether the next non-blank line starts a paragraph.
    let mut at_paragraph_start = true;
    // YAML front matter (`---` on the first line, to `---` or `...`) holds no headings.
    let mut front_matter = text.lines().next().is_some_and(|l| l.trim_end() == "---");
    for (start, line) in lines(text) {
        if front_matter {
            front_matter = start == 0 || !matches!(line.trim_end(), "---" | "...");
            continue;
        }
        let candidate = paragraph_first.take();
        let Some(content) = unindented(line) else {
            at_paragraph_start = false;
            continue;
        };
        if let Some((c, run)) = open_fence {
            if fence(content).is_some_and(|(c2, run2)| c2 == c && run2 >= run && content[run2..].trim().is_empty()) {
                open_fence = None;
                at_paragraph_start = true;
            }
            continue;
        }
        if let Some(f) = fence(content) {
            open_fence = Some(f);
            continue;
        }
        if let Some((level, heading)) = atx(content) {
            out.push(Heading { start, end: start + line.len(), level, text: heading });
            at_paragraph_start = true;
            continue;
        }
        if let Some(level) = setext_underline(content) {
            // Under a one-line paragraph this is a heading; elsewhere a rule that ends a paragraph.
            if let Some((first_start, first)) = candidate {
                out.push(Heading {
                    start: first_start,
                    end: start + line.len(),
                    level,
                    text: first.trim().to_string(),
                });
            }
            at_paragraph_start = true;
            continue;
        }
        if content.trim().is_empty() {
            at_paragraph_start = true;
        } else {
            if at_paragraph_start {
                paragraph_first = Some((start, content));
            }
            at_paragraph_start = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(text: &str) -> Vec<(&str, Vec<String>)> {
        sections(text).into_iter().map(|s| (&text[s.range.clone()], s.headings)).collect()
    }

    #[test]
    fn atx_headings_and_paths() {
        let text = "intro\n# A\na\n## B ##\nb\n### C\nc\n## D\nd\n# E\ne\n";
        let got = summary(text);
        let want: Vec<(&str, Vec<&str>)> = vec![
            ("intro\n", vec![]),
            ("# A\na\n", vec!["A"]),
            ("## B ##\nb\n", vec!["A", "B"]),
            ("### C\nc\n", vec!["A", "B", "C"]),
            ("## D\nd\n", vec!["A", "D"]),
            ("# E\ne\n", vec!["E"]),
        ];
        assert_eq!(got.len(), want.len());
        for ((t, h), (wt, wh)) in got.iter().zip(&want) {
            assert_eq!(t, wt);
            assert_eq!(h, wh);
        }
    }

    #[test]
    fn empty_heading_joins_deeper_one_but_not_sibling() {
        let text = "# A\n\n## B\nbody\n# C\n# D\nd";
        let got = summary(text);
        assert_eq!(got[0], ("# A\n\n## B\nbody\n", vec!["A".to_string(), "B".to_string()]));
        assert_eq!(got[1], ("# C\n", vec!["C".to_string()]));
        assert_eq!(got[2], ("# D\nd", vec!["D".to_string()]));
        let s = &sections(text)[0];
        assert_eq!(s.body_start, text.find("body").unwrap());
    }

    #[test]
    fn setext_fences_and_non_headings() {
        let text = "Title\n=====\n\n```sh\n# not a heading\n```\n#hashtag\n    # indented code\n\
                    Para line one\nline two\n---\nSub\n---\ntext\n";
        let got = summary(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, vec!["Title"]);
        assert!(got[0].0.contains("# not a heading") && got[0].0.contains("line two\n---\n"));
        assert_eq!(got[1], ("Sub\n---\ntext\n", vec!["Title".to_string(), "Sub".to_string()]));
    }

    #[test]
    fn front_matter_is_preamble() {
        let text = "---\ntitle: x\n---\n# Real\nbody\n";
        let got = summary(text);
        assert_eq!(got[0], ("---\ntitle: x\n---\n", vec![]));
        assert_eq!(got[1], ("# Real\nbody\n", vec!["Real".to_string()]));
        // Without front matter the same lines make a setext heading.
        let got = summary("title: x\n---\nbody\n");
        assert_eq!(got, [("title: x\n---\nbody\n", vec!["title: x".to_string()])]);
    }

    #[test]
    fn heading_text_forms() {
        assert_eq!(atx("# Title"), Some((1, "Title".into())));
        assert_eq!(atx("###   Spaced   ###  "), Some((3, "Spaced".into())));
        assert_eq!(atx("## C#"), Some((2, "C#".into())));
        assert_eq!(atx("#"), Some((1, "".into())));
        assert_eq!(atx("####### seven"), None);
        assert_eq!(atx("#no"), None);
    }

    #[test]
    fn crlf_headings() {
        let text = "# A\r\n\r\nx\r\n## B\r\ny\r\n";
        let got = summary(text);
        assert_eq!(got[0], ("# A\r\n\r\nx\r\n", vec!["A".to_string()]));
        assert_eq!(got[1], ("## B\r\ny\r\n", vec!["A".to_string(), "B".to_string()]));
    }
}
