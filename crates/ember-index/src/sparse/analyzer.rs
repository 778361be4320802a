//! Turning text into index terms: segmentation, lowercasing, stopwords, stemming.
//!
//! An [`AnalyzerConfig`] is plain data (serde), chosen per collection and stored with the index;
//! an [`Analyzer`] is the built form (stopword set, stemmer) and serialises as its config.
//!
//! The pipeline follows Lucene's analysis chain, in this order:
//!
//! 1. **segment**: Unicode word boundaries (UAX #29, as Lucene's `StandardTokenizer`), keeping
//!    the segments Lucene keeps: those with a letter or a digit (not a superscript, subscript,
//!    fraction or other "No" number) and emoji (Extended_Pictographic, which Lucene ≥ 8 emits as
//!    tokens); or jieba (`jieba-rs`, HMM on) for Chinese, where words are not separated by
//!    spaces;
//! 2. strip an English possessive `'s` (Lucene's `EnglishPossessiveFilter`), if asked;
//! 3. lowercase, if asked;
//! 4. drop stopwords;
//! 5. stem: the Porter stemmer (Lucene's `PorterStemFilter`) or a Snowball stemmer
//!    (`rust-stemmers`).
//!
//! [`AnalyzerConfig::english`] is Anserini's default for its BEIR BM25 baselines
//! (`DefaultEnglishAnalyzer`: standard tokenizer, possessive filter, lowercase, Lucene's 33 English
//! stopwords, Porter stemmer).

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use super::error::SparseError;
use super::porter;

/// A language, for stopword lists and Snowball stemmers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Arabic,
    Chinese,
    Danish,
    Dutch,
    English,
    Finnish,
    French,
    German,
    Greek,
    Hungarian,
    Italian,
    Norwegian,
    Portuguese,
    Romanian,
    Russian,
    Spanish,
    Swedish,
    Tamil,
    Turkish,
}

impl Language {
    /// The ISO 639-1 code (the key of the `stop-words` crate's NLTK lists).
    fn iso_code(self) -> &'static str {
        match self {
            Language::Arabic => "ar",
            Language::Chinese => "zh",
            Language::Danish => "da",
            Language::Dutch => "nl",
            Language::English => "en",
            Language::Finnish => "fi",
            Language::French => "fr",
            Language::German => "de",
            Language::Greek => "el",
            Language::Hungarian => "hu",
            Language::Italian => "it",
            Language::Norwegian => "no",
            Language::Portuguese => "pt",
            Language::Romanian => "ro",
            Language::Russian => "ru",
            Language::Spanish => "es",
            Language::Swedish => "sv",
            Language::Tamil => "ta",
            Language::Turkish => "tr",
        }
    }

    fn snowball(self) -> Option<rust_stemmers::Algorithm> {
        use rust_stemmers::Algorithm as A;
        Some(match self {
            Language::Arabic => A::Arabic,
            Language::Chinese => return None,
            Language::Danish => A::Danish,
            Language::Dutch => A::Dutch,
            Language::English => A::English,
            Language::Finnish => A::Finnish,
            Language::French => A::French,
            Language::German => A::German,
            Language::Greek => A::Greek,
            Language::Hungarian => A::Hungarian,
            Language::Italian => A::Italian,
            Language::Norwegian => A::Norwegian,
            Language::Portuguese => A::Portuguese,
            Language::Romanian => A::Romanian,
            Language::Russian => A::Russian,
            Language::Spanish => A::Spanish,
            Language::Swedish => A::Swedish,
            Language::Tamil => A::Tamil,
            Language::Turkish => A::Turkish,
        })
    }
}

/// How text is cut into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segmenter {
    /// Unicode word boundaries (UAX #29): right for space-separated scripts; Han characters
    /// become one token each.
    #[default]
    Unicode,
    /// jieba's dictionary + HMM segmentation, for Chinese (other scripts in the text are kept
    /// as jieba returns them: runs of letters or digits).
    Jieba,
}

/// Which words are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopwords {
    #[default]
    None,
    /// Lucene's `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET` (33 words), which Anserini's BEIR BM25
    /// baselines use.
    English,
    /// NLTK's list for the language (from the `stop-words` crate; English has 179 words).
    Nltk(Language),
    /// These words (compared after lowercasing, when the analyzer lowercases).
    Custom(Vec<String>),
}

/// How words are reduced to stems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stemmer {
    #[default]
    None,
    /// The original Porter algorithm for English, as Lucene's `PorterStemFilter`.
    Porter,
    /// A Snowball stemmer (`rust-stemmers`; `english` is Porter2).
    Snowball(Language),
}

/// An analyzer's settings: plain data, chosen per collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyzerConfig {
    pub segmenter: Segmenter,
    /// Remove a trailing `'s` / `’s` (before lowercasing, as Lucene's `EnglishPossessiveFilter`).
    pub english_possessive: bool,
    pub lowercase: bool,
    pub stopwords: Stopwords,
    pub stemmer: Stemmer,
}

impl Default for AnalyzerConfig {
    /// [`AnalyzerConfig::english`]: a field left out of a config keeps the English value.
    fn default() -> Self {
        AnalyzerConfig::english()
    }
}

impl AnalyzerConfig {
    /// Unicode words, lowercased, nothing removed or stemmed.
    pub fn plain() -> Self {
        AnalyzerConfig {
            segmenter: Segmenter::Unicode,
            english_possessive: false,
            lowercase: true,
            stopwords: Stopwords::None,
            stemmer: Stemmer::None,
        }
    }

    /// Anserini's `DefaultEnglishAnalyzer` (its BEIR BM25 "flat" baselines): Unicode words,
    /// possessives stripped, lowercased, Lucene's English stopwords, Porter stemming.
    pub fn english() -> Self {
        AnalyzerConfig {
            segmenter: Segmenter::Unicode,
            english_possessive: true,
            lowercase: true,
            stopwords: Stopwords::English,
            stemmer: Stemmer::Porter,
        }
    }

    /// Chinese: jieba segmentation, lowercased (for embedded Latin words), NLTK's Chinese
    /// stopwords, no stemming.
    pub fn chinese() -> Self {
        AnalyzerConfig {
            segmenter: Segmenter::Jieba,
            english_possessive: false,
            lowercase: true,
            stopwords: Stopwords::Nltk(Language::Chinese),
            stemmer: Stemmer::None,
        }
    }

    /// A language's usual analyzer: English as [`AnalyzerConfig::english`], Chinese as
    /// [`AnalyzerConfig::chinese`], others Unicode words, lowercased, NLTK stopwords and the
    /// language's Snowball stemmer.
    pub fn for_language(language: Language) -> Self {
        match language {
            Language::English => Self::english(),
            Language::Chinese => Self::chinese(),
            other => AnalyzerConfig {
                segmenter: Segmenter::Unicode,
                english_possessive: false,
                lowercase: true,
                stopwords: Stopwords::Nltk(other),
                stemmer: Stemmer::Snowball(other),
            },
        }
    }
}

/// Lucene's `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`.
pub const LUCENE_ENGLISH_STOPWORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

/// A built analyzer. Cheap to clone; `Send + Sync`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "AnalyzerConfig", into = "AnalyzerConfig")]
pub struct Analyzer {
    config: AnalyzerConfig,
    stopwords: HashSet<String>,
    snowball: Option<rust_stemmers::Algorithm>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl PartialEq for Analyzer {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl TryFrom<AnalyzerConfig> for Analyzer {
    type Error = SparseError;
    fn try_from(config: AnalyzerConfig) -> Result<Self, SparseError> {
        Analyzer::new(config)
    }
}

impl From<Analyzer> for AnalyzerConfig {
    fn from(a: Analyzer) -> Self {
        a.config
    }
}

/// jieba's default dictionary takes a few hundred milliseconds to load: once per process.
fn jieba() -> &'static jieba_rs::Jieba {
    static JIEBA: OnceLock<jieba_rs::Jieba> = OnceLock::new();
    JIEBA.get_or_init(jieba_rs::Jieba::new)
}

impl Analyzer {
    /// Build an analyzer; fails for a Snowball stemmer that does not exist (Chinese).
    pub fn new(config: AnalyzerConfig) -> Result<Self, SparseError> {
        let listed: Vec<String> = match &config.stopwords {
            Stopwords::None => Vec::new(),
            Stopwords::English => LUCENE_ENGLISH_STOPWORDS.iter().map(|w| w.to_string()).collect(),
            Stopwords::Nltk(language) => stop_words::lookup(language.iso_code())
                .ok_or(SparseError::UnsupportedLanguage { what: "NLTK stopword list", language: *language })?
                .iter()
                .map(|w| w.to_string())
                .collect(),
            Stopwords::Custom(words) => words.clone(),
        };
        let stopwords = listed.into_iter().map(|w| if config.lowercase { w.to_lowercase() } else { w }).collect();
        let snowball = match config.stemmer {
            Stemmer::Snowball(language) => Some(
                language.snowball().ok_or(SparseError::UnsupportedLanguage { what: "Snowball stemmer", language })?,
            ),
            Stemmer::None | Stemmer::Porter => None,
        };
        if config.segmenter == Segmenter::Jieba {
            jieba();
        }
        Ok(Analyzer { config, stopwords, snowball })
    }

    /// [`AnalyzerConfig::english`], built.
    pub fn english() -> Self {
        Analyzer {
            config: AnalyzerConfig::english(),
            stopwords: LUCENE_ENGLISH_STOPWORDS.iter().map(|w| w.to_string()).collect(),
            snowball: None,
        }
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    /// The terms of `text`, in order, repeats kept.
    pub fn analyze(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_term(text, |t| out.push(t));
        out
    }

    /// Call `f` with each term of `text`, in order.
    pub fn for_each_term(&self, text: &str, mut f: impl FnMut(String)) {
        let stemmer = self.snowball.map(rust_stemmers::Stemmer::create);
        let mut handle = |word: &str| {
            let word = if self.config.english_possessive { strip_possessive(word) } else { word };
            if word.is_empty() {
                return;
            }
            let word = if self.config.lowercase { word.to_lowercase() } else { word.to_string() };
            if self.stopwords.contains(&word) {
                return;
            }
            let term = match (&self.config.stemmer, &stemmer) {
                (Stemmer::Porter, _) => porter::stem(&word),
                (Stemmer::Snowball(_), Some(s)) => s.stem(&word).into_owned(),
                _ => word,
            };
            if !term.is_empty() {
                f(term);
            }
        };
        match self.config.segmenter {
            Segmenter::Unicode => text.split_word_bounds().filter(|w| is_token(w)).for_each(&mut handle),
            Segmenter::Jieba => {
                jieba().cut(text, true).into_iter().filter(|t| is_token(t.word)).for_each(|t| handle(t.word.trim()))
            }
        }
    }
}

/// Lucene's `EnglishPossessiveFilter`: a trailing `'s`, `’s` or `＇s` (any case of `s`) removed.
fn strip_possessive(word: &str) -> &str {
    let mut rev = word.char_indices().rev();
    match (rev.next(), rev.next()) {
        (Some((_, 's' | 'S')), Some((at, '\'' | '\u{2019}' | '\u{FF07}'))) => &word[..at],
        _ => word,
    }
}

/// Whether a word segment is a token, as Lucene's `StandardTokenizer` decides: it holds a letter,
/// a digit (of any script, but not the "No" numbers: superscripts, subscripts, fractions,
/// circled numbers), or an emoji.
fn is_token(segment: &str) -> bool {
    segment.chars().any(|c| c.is_alphabetic() || (c.is_numeric() && !is_other_number(c)) || is_pictographic(c))
}

/// The common "No" (other number) characters, which UAX #29 does not count as numeric.
fn is_other_number(c: char) -> bool {
    matches!(c,
        '\u{B2}'..='\u{B3}' | '\u{B9}' | '\u{BC}'..='\u{BE}' | '\u{9F4}'..='\u{9F9}' | '\u{BF0}'..='\u{BF2}'
        | '\u{F2A}'..='\u{F33}' | '\u{1369}'..='\u{137C}' | '\u{17F0}'..='\u{17F9}' | '\u{2070}'
        | '\u{2074}'..='\u{2079}' | '\u{2080}'..='\u{2089}' | '\u{2150}'..='\u{215F}' | '\u{2189}'
        | '\u{2460}'..='\u{249B}' | '\u{24EA}'..='\u{24FF}' | '\u{2776}'..='\u{2793}' | '\u{2CFD}'
        | '\u{3192}'..='\u{3195}' | '\u{3220}'..='\u{3229}' | '\u{3248}'..='\u{324F}' | '\u{3251}'..='\u{325F}'
        | '\u{3280}'..='\u{3289}' | '\u{32B1}'..='\u{32BF}' | '\u{1F100}'..='\u{1F10C}')
}

/// Unicode's Extended_Pictographic property (emoji-data.txt), the ranges that hold characters.
fn is_pictographic(c: char) -> bool {
    matches!(c,
        '\u{A9}' | '\u{AE}' | '\u{203C}' | '\u{2049}' | '\u{2122}' | '\u{2139}' | '\u{2194}'..='\u{2199}'
        | '\u{21A9}'..='\u{21AA}' | '\u{231A}'..='\u{231B}' | '\u{2328}' | '\u{2388}' | '\u{23CF}'
        | '\u{23E9}'..='\u{23F3}' | '\u{23F8}'..='\u{23FA}' | '\u{24C2}' | '\u{25AA}'..='\u{25AB}' | '\u{25B6}'
        | '\u{25C0}' | '\u{25FB}'..='\u{25FE}' | '\u{2600}'..='\u{2605}' | '\u{2607}'..='\u{2612}'
        | '\u{2614}'..='\u{2685}' | '\u{2690}'..='\u{2705}' | '\u{2708}'..='\u{2712}' | '\u{2714}' | '\u{2716}'
        | '\u{271D}' | '\u{2721}' | '\u{2728}' | '\u{2733}'..='\u{2734}' | '\u{2744}' | '\u{2747}' | '\u{274C}'
        | '\u{274E}' | '\u{2753}'..='\u{2755}' | '\u{2757}' | '\u{2763}'..='\u{2767}' | '\u{2795}'..='\u{2797}'
        | '\u{27A1}' | '\u{27B0}' | '\u{27BF}' | '\u{2934}'..='\u{2935}' | '\u{2B05}'..='\u{2B07}'
        | '\u{2B1B}'..='\u{2B1C}' | '\u{2B50}' | '\u{2B55}' | '\u{3030}' | '\u{303D}' | '\u{3297}' | '\u{3299}'
        | '\u{1F000}'..='\u{1F0FF}' | '\u{1F10D}'..='\u{1F10F}' | '\u{1F12F}' | '\u{1F16C}'..='\u{1F171}'
        | '\u{1F17E}'..='\u{1F17F}' | '\u{1F18E}' | '\u{1F191}'..='\u{1F19A}' | '\u{1F1AD}'..='\u{1F1E5}'
        | '\u{1F201}'..='\u{1F20F}' | '\u{1F21A}' | '\u{1F22F}' | '\u{1F232}'..='\u{1F23A}'
        | '\u{1F23C}'..='\u{1F23F}' | '\u{1F249}'..='\u{1F3FA}' | '\u{1F400}'..='\u{1F53D}'
        | '\u{1F546}'..='\u{1F64F}' | '\u{1F680}'..='\u{1F6FF}' | '\u{1F774}'..='\u{1F77F}'
        | '\u{1F7D5}'..='\u{1F7FF}' | '\u{1F80C}'..='\u{1F80F}' | '\u{1F848}'..='\u{1F84F}'
        | '\u{1F85A}'..='\u{1F85F}' | '\u{1F888}'..='\u{1F88F}' | '\u{1F8AE}'..='\u{1F8FF}'
        | '\u{1F90C}'..='\u{1F93A}' | '\u{1F93C}'..='\u{1F945}' | '\u{1F947}'..='\u{1FAFF}'
        | '\u{1FC00}'..='\u{1FFFD}')
}
