//! The metadata filter language.
//!
//! ```text
//! filter     = or
//! or         = and ("or" and)*
//! and        = not ("and" not)*
//! not        = "not" not | primary
//! primary    = "(" filter ")" | "exists" path | path op value | path "in" "[" [value ("," value)* [","]] "]"
//! op         = "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
//! value      = string ('…' or "…", JSON escapes) | number | "true" | "false" | "null"
//! path       = name ("." name)*        name = [A-Za-z_][A-Za-z0-9_-]*
//! ```
//!
//! Keywords are case-insensitive. Semantics:
//!
//! * A path walks nested objects (`meta.author` is `{"meta": {"author": …}}`); a top-level key
//!   spelled with the dots (`{"meta.author": …}`) is used when present.
//! * `=`/`in` compare numbers by value (`2020` equals `2020.0`), strings, booleans and null
//!   exactly. When the field holds an array, a condition holds if it holds for any element.
//! * `<`, `<=`, `>`, `>=` compare two numbers or two strings (lexicographically, so ISO dates
//!   work); any other pair, or a missing field, does not match.
//! * `a != v` is exactly `not (a = v)`: it matches documents without `a`.
//! * `exists a` matches when `a` is present and not null.

pub mod milvus;
pub mod sql;

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};
use thiserror::Error;

/// Why a filter did not parse: the byte offset in the source (0-based) and what was expected.
/// Displayed with a 1-based column: "filter error at column 12: expected a value after '>='".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("filter error at column {}: {message}", position + 1)]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

/// A parsed filter over document metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare { path: Path, op: CompareOp, value: Literal },
    In { path: Path, values: Vec<Literal> },
    Exists(Path),
}

#[derive(Debug, Clone, PartialEq)]
struct Path {
    /// The source spelling (`meta.author`), also tried as a literal top-level key.
    dotted: String,
    parts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    String(String),
    Number(f64),
    Bool(bool),
    Null,
}

impl Filter {
    /// Parse a filter; errors give the byte position and what was expected there.
    pub fn parse(src: &str) -> Result<Filter, FilterError> {
        let tokens = lex(src)?;
        let mut parser = Parser { tokens, at: 0, end: src.len() };
        let expr = parser.or()?;
        match parser.peek() {
            None => Ok(Filter { expr }),
            Some(t) => Err(FilterError {
                position: t.position,
                message: format!("expected 'and', 'or' or the end of the filter, found {}", t.kind),
            }),
        }
    }

    /// Whether a document with this metadata passes the filter.
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        self.expr.eval(metadata)
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

impl Path {
    fn lookup<'a>(&self, metadata: &'a Map<String, Value>) -> Option<&'a Value> {
        if self.parts.len() > 1 {
            if let Some(v) = metadata.get(&self.dotted) {
                return Some(v);
            }
        }
        let (first, rest) = self.parts.split_first()?;
        rest.iter().try_fold(metadata.get(first)?, |v, part| v.as_object()?.get(part))
    }
}

impl Literal {
    fn equals(&self, v: &Value) -> bool {
        match (self, v) {
            (Literal::String(s), Value::String(t)) => s == t,
            (Literal::Number(n), Value::Number(m)) => m.as_f64() == Some(*n),
            (Literal::Bool(b), Value::Bool(c)) => b == c,
            (Literal::Null, Value::Null) => true,
            _ => false,
        }
    }

    /// `v` compared to the literal, when both are numbers or both strings.
    fn order(&self, v: &Value) -> Option<Ordering> {
        match (self, v) {
            (Literal::String(s), Value::String(t)) => Some(t.as_str().cmp(s.as_str())),
            (Literal::Number(n), Value::Number(m)) => m.as_f64()?.partial_cmp(n),
            _ => None,
        }
    }
}

/// Whether `test` holds for the value or, for an array, any of its elements.
fn any(v: &Value, test: impl Fn(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(test),
        v => test(v),
    }
}

impl Expr {
    fn eval(&self, metadata: &Map<String, Value>) -> bool {
        match self {
            Expr::And(a, b) => a.eval(metadata) && b.eval(metadata),
            Expr::Or(a, b) => a.eval(metadata) || b.eval(metadata),
            Expr::Not(e) => !e.eval(metadata),
            Expr::Exists(path) => path.lookup(metadata).is_some_and(|v| !v.is_null()),
            Expr::In { path, values } => {
                path.lookup(metadata).is_some_and(|v| any(v, |x| values.iter().any(|l| l.equals(x))))
            }
            Expr::Compare { path, op, value } => {
                let found = path.lookup(metadata);
                match op {
                    CompareOp::Eq => found.is_some_and(|v| any(v, |x| value.equals(x))),
                    CompareOp::Ne => !found.is_some_and(|v| any(v, |x| value.equals(x))),
                    CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => found.is_some_and(|v| {
                        any(v, |x| {
                            value.order(x).is_some_and(|o| match op {
                                CompareOp::Lt => o == Ordering::Less,
                                CompareOp::Le => o != Ordering::Greater,
                                CompareOp::Gt => o == Ordering::Greater,
                                _ => o != Ordering::Less,
                            })
                        })
                    }),
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Word(String),
    String(String),
    Number(f64),
    Op(CompareOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Word(w) => write!(f, "'{w}'"),
            TokenKind::String(s) => write!(f, "the string {s:?}"),
            TokenKind::Number(n) => write!(f, "the number {n}"),
            TokenKind::Op(op) => write!(f, "'{}'", op.symbol()),
            TokenKind::LParen => f.write_str("'('"),
            TokenKind::RParen => f.write_str("')'"),
            TokenKind::LBracket => f.write_str("'['"),
            TokenKind::RBracket => f.write_str("']'"),
            TokenKind::Comma => f.write_str("','"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: TokenKind,
    position: usize,
}

fn error(position: usize, message: impl Into<String>) -> FilterError {
    FilterError { position, message: message.into() }
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn lex(src: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        let single = match c {
            '(' => Some(TokenKind::LParen),
            ')' => Some(TokenKind::RParen),
            '[' => Some(TokenKind::LBracket),
            ']' => Some(TokenKind::RBracket),
            ',' => Some(TokenKind::Comma),
            _ => None,
        };
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if let Some(kind) = single {
            chars.next();
            tokens.push(Token { kind, position: start });
            continue;
        }
        let kind = match c {
            '=' | '!' | '<' | '>' => {
                chars.next();
                let eq = chars.next_if(|&(_, c)| c == '=').is_some();
                TokenKind::Op(match (c, eq) {
                    ('=', _) => CompareOp::Eq,
                    ('!', true) => CompareOp::Ne,
                    ('!', false) => return Err(error(start, "expected '!=' (use 'not' for negation)")),
                    ('<', false) => CompareOp::Lt,
                    ('<', true) => CompareOp::Le,
                    ('>', false) => CompareOp::Gt,
                    _ => CompareOp::Ge,
                })
            }
            '"' | '\'' => TokenKind::String(lex_string(start, &mut chars)?),
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let mut end = start;
                while let Some((i, c)) = chars.next_if(|&(_, c)| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
                    end = i + c.len_utf8();
                }
                let text = &src[start..end];
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => TokenKind::Number(n),
                    _ => return Err(error(start, format!("invalid number '{text}'"))),
                }
            }
            c if is_word_start(c) => {
                let mut end = start;
                while let Some((i, c)) = chars.next_if(|&(_, c)| is_word_char(c)) {
                    end = i + c.len_utf8();
                }
                TokenKind::Word(src[start..end].to_string())
            }
            c => return Err(error(start, format!("unexpected character '{c}'"))),
        };
        tokens.push(Token { kind, position: start });
    }
    Ok(tokens)
}

fn lex_string(start: usize, chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Result<String, FilterError> {
    let Some((_, quote)) = chars.next() else { return Err(error(start, "expected a string")) };
    let mut out = String::new();
    loop {
        let Some((i, c)) = chars.next() else {
            return Err(error(start, "unterminated string (no closing quote)"));
        };
        match c {
            c if c == quote => return Ok(out),
            '\\' => {
                let Some((_, e)) = chars.next() else {
                    return Err(error(start, "unterminated string (no closing quote)"));
                };
                match e {
                    '"' | '\'' | '\\' | '/' => out.push(e),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'u' => {
                        let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                        let code = u32::from_str_radix(&hex, 16).ok().filter(|_| hex.len() == 4);
                        match code.and_then(char::from_u32) {
                            Some(c) => out.push(c),
                            None => return Err(error(i, "expected four hex digits of a \\u escape (not a surrogate)")),
                        }
                    }
                    other => return Err(error(i, format!("unknown escape '\\{other}' in a string"))),
                }
            }
            c => out.push(c),
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// The source length: the position reported for "end of the filter".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn position(&self) -> usize {
        self.peek().map_or(self.end, |t| t.position)
    }

    fn found(&self) -> String {
        self.peek().map_or("the end of the filter".to_string(), |t| t.kind.to_string())
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: TokenKind::Word(w), .. }) if w.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let yes = self.keyword(word);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        let yes = self.peek().is_some_and(|t| &t.kind == kind);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.not()?;
        while self.eat_keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, FilterError> {
        if self.eat_keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        let position = self.position();
        if self.eat(&TokenKind::LParen) {
            let inner = self.or()?;
            if !self.eat(&TokenKind::RParen) {
                return Err(error(
                    self.position(),
                    format!("expected ')' to close the '(' at column {}, found {}", position + 1, self.found()),
                ));
            }
            return Ok(inner);
        }
        if self.eat_keyword("exists") {
            let path = self.path("expected a field name after 'exists'")?;
            return Ok(Expr::Exists(path));
        }
        let path = self.path("expected a condition (a field name, 'not', 'exists' or '(')")?;
        if self.eat_keyword("in") {
            return Ok(Expr::In { path, values: self.list()? });
        }
        let Some(Token { kind: TokenKind::Op(op), .. }) = self.peek().cloned() else {
            return Err(error(
                self.position(),
                format!(
                    "expected an operator (=, !=, <, <=, >, >=, in) after '{}', found {}",
                    path.dotted,
                    self.found()
                ),
            ));
        };
        self.at += 1;
        let value = self.value(&format!("expected a value after '{}'", op.symbol()))?;
        Ok(Expr::Compare { path, op, value })
    }

    fn path(&mut self, expected: &str) -> Result<Path, FilterError> {
        let position = self.position();
        let word = match self.peek() {
            Some(Token { kind: TokenKind::Word(w), .. }) if !is_reserved(w) => w.clone(),
            _ => return Err(error(position, format!("{expected}, found {}", self.found()))),
        };
        let parts: Vec<String> = word.split('.').map(str::to_string).collect();
        if let Some(i) = parts.iter().position(|p| p.is_empty() || !p.starts_with(is_word_start)) {
            let offset: usize = parts[..i].iter().map(|p| p.len() + 1).sum();
            return Err(error(position + offset, format!("expected a field name part in '{word}'")));
        }
        self.at += 1;
        Ok(Path { dotted: word, parts })
    }

    fn value(&mut self, expected: &str) -> Result<Literal, FilterError> {
        let literal = match self.peek().map(|t| &t.kind) {
            Some(TokenKind::String(s)) => Literal::String(s.clone()),
            Some(TokenKind::Number(n)) => Literal::Number(*n),
            Some(TokenKind::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(TokenKind::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(TokenKind::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => {
                let hint = if matches!(self.peek().map(|t| &t.kind), Some(TokenKind::Word(w)) if !is_reserved(w)) {
                    " (quote strings: \"…\")"
                } else {
                    ""
                };
                return Err(error(self.position(), format!("{expected}, found {}{hint}", self.found())));
            }
        };
        self.at += 1;
        Ok(literal)
    }

    fn list(&mut self) -> Result<Vec<Literal>, FilterError> {
        if !self.eat(&TokenKind::LBracket) {
            return Err(error(self.position(), format!("expected '[' after 'in', found {}", self.found())));
        }
        let mut values = Vec::new();
        loop {
            if self.eat(&TokenKind::RBracket) {
                return Ok(values);
            }
            values.push(self.value("expected a value or ']' in the list")?);
            if self.eat(&TokenKind::RBracket) {
                return Ok(values);
            }
            if !self.eat(&TokenKind::Comma) {
                return Err(error(self.position(), format!("expected ',' or ']' in the list, found {}", self.found())));
            }
        }
    }
}

fn is_reserved(word: &str) -> bool {
    ["and", "or", "not", "in", "exists", "true", "false", "null"].iter().any(|k| word.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn check(src: &str, doc: Value) -> bool {
        Filter::parse(src).unwrap_or_else(|e| panic!("{src}: {e}")).matches(&meta(doc))
    }

    #[test]
    fn comparison_operators() {
        let d = json!({"lang": "en", "year": 2021, "score": 0.5, "draft": false, "date": "2024-03-01", "none": null});
        for (src, want) in [
            (r#"lang = "en""#, true),
            (r#"lang == 'en'"#, true),
            (r#"lang = "de""#, false),
            (r#"lang != "de""#, true),
            (r#"lang != "en""#, false),
            ("year = 2021", true),
            ("year = 2021.0", true),
            ("year >= 2021", true),
            ("year > 2021", false),
            ("year <= 2020", false),
            ("year < 2022", true),
            ("score > 0.25 and score < 1e0", true),
            ("score >= -1", true),
            ("draft = false", true),
            ("draft = true", false),
            ("none = null", true),
            (r#"date >= "2024-01-01""#, true),
            (r#"date < "2024-01-01""#, false),
            // Type mismatches and missing fields never satisfy an ordering.
            (r#"year > "2000""#, false),
            ("lang > 1", false),
            ("missing < 1", false),
            ("missing = 1", false),
            ("missing != 1", true),
        ] {
            assert_eq!(check(src, d.clone()), want, "{src}");
        }
    }

    #[test]
    fn in_lists_arrays_and_paths() {
        let d = json!({"tag": "b", "tags": ["x", "y"], "meta": {"author": "Ann", "n": {"deep": 3}}, "a.b": 1});
        for (src, want) in [
            (r#"tag in ["a", "b"]"#, true),
            (r#"tag in ["a", "c",]"#, false),
            ("tag in []", false),
            (r#"tag in [1, "b", true]"#, true),
            (r#"tags = "y""#, true),
            (r#"tags in ["q", "x"]"#, true),
            (r#"tags != "x""#, false),
            (r#"meta.author = "Ann""#, true),
            ("meta.n.deep >= 3", true),
            ("meta.n.deep.deeper = 3", false),
            ("a.b = 1", true),
            ("exists meta.author", true),
            ("exists meta.nobody", false),
            ("exists tag and not exists nothing", true),
        ] {
            assert_eq!(check(src, d.clone()), want, "{src}");
        }
    }

    #[test]
    fn boolean_logic_and_precedence() {
        let d = json!({"lang": "en", "year": 2019});
        for (src, want) in [
            (r#"lang = "en" and year >= 2020"#, false),
            (r#"lang = "en" or year >= 2020"#, true),
            (r#"not lang = "en""#, false),
            (r#"not not lang = "en""#, true),
            // and binds tighter than or
            (r#"lang = "de" and year = 2019 or lang = "en""#, true),
            (r#"lang = "de" and (year = 2019 or lang = "en")"#, false),
            (r#"NOT (lang = "de" OR year > 2020) AND exists year"#, true),
            (r#"not lang in ["de", "fr"]"#, true),
        ] {
            assert_eq!(check(src, d.clone()), want, "{src}");
        }
    }

    #[test]
    fn strings_and_numbers_lex() {
        let d = json!({"q": "say \"hi\"\n", "u": "é", "s": "it's", "n": -2.5e-3});
        assert!(check(r#"q = "say \"hi\"\n""#, d.clone()));
        assert!(check(r#"u = "\u00e9""#, d.clone()));
        assert!(check(r#"s = "it's" and s = 'it\'s'"#, d.clone()));
        assert!(check("n = -2.5e-3 and n < -0.0024E0 and n > -1e-2", d.clone()));
        assert!(check("n = -0.0025", d));
    }

    fn err(src: &str) -> FilterError {
        Filter::parse(src).expect_err(src)
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = err(r#"lang = "en" and year >= "#);
        assert_eq!(e.position, 24);
        assert_eq!(
            e.to_string(),
            "filter error at column 25: expected a value after '>=', found the end of the filter"
        );
        let e = err(r#"lang = "en" and year >= and"#);
        assert_eq!((e.position, e.message.as_str()), (24, "expected a value after '>=', found 'and'"));
        for (src, position, message) in [
            ("", 0, "expected a condition"),
            ("year", 4, "expected an operator (=, !=, <, <=, >, >=, in) after 'year'"),
            ("year 2020", 5, "expected an operator"),
            ("lang = en", 7, "(quote strings"),
            ("tag in \"a\"", 7, "expected '[' after 'in'"),
            ("tag in [\"a\" \"b\"]", 12, "expected ',' or ']'"),
            ("tag in [,]", 8, "expected a value or ']'"),
            ("tag in [\"a\"", 11, "expected ',' or ']' in the list, found the end of the filter"),
            ("(a = 1", 6, "expected ')' to close the '(' at column 1"),
            ("a = 1)", 5, "expected 'and', 'or' or the end of the filter, found ')'"),
            ("a = 1 b = 2", 6, "expected 'and', 'or' or the end"),
            ("a = 1 and", 9, "expected a condition"),
            ("exists", 6, "expected a field name after 'exists'"),
            ("exists 3", 7, "expected a field name after 'exists'"),
            ("a = \"open", 4, "unterminated string"),
            ("a = \"bad \\q\"", 9, "unknown escape"),
            ("a = 1.2.3", 4, "invalid number '1.2.3'"),
            ("a = 12abc", 4, "invalid number"),
            ("a ! 1", 2, "expected '!='"),
            ("a = 1 & b = 2", 6, "unexpected character '&'"),
            ("meta..x = 1", 5, "expected a field name part"),
            ("and = 1", 0, "expected a condition"),
        ] {
            let e = err(src);
            assert_eq!(e.position, position, "{src}: {e}");
            assert!(e.message.contains(message), "{src}: {e}");
        }
    }
}
