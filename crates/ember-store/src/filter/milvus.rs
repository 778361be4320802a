//! A Milvus prefilter for a filter: a boolean expression over a JSON field that every document
//! the filter matches also matches (a superset), so Milvus can narrow its candidates. The Milvus
//! backend then applies [`Filter::matches`] to what comes back, so its results are the filter's
//! exactly, whatever Milvus's JSON semantics do at the edges.
//!
//! Only what maps onto Milvus's expressions without doubt is pushed down: `and` / `or` of
//! equality and `in` tests with string or boolean values on top-level keys, each written as "the
//! value is one of these, or an array containing one" (`f["k"] == v or json_contains(f["k"], v)`),
//! which is the filter language's rule for arrays. Numbers (Milvus compares JSON integers and
//! floats its own way), ranges (no "an element is > x" in Milvus), `not` / `!=` (Milvus's
//! null logic differs), `exists`, `null` and dotted paths push nothing down: the part of the
//! filter they are in becomes "no constraint", which keeps the prefilter a superset. The formula
//! pushed down has no negation, so Milvus's three-valued logic (a missing key is null, null
//! counts as false) decides it as two-valued logic would.

use super::{CompareOp, Expr, Filter, Literal, Path};

impl Filter {
    /// The prefilter over the JSON field `field`, or `None` when nothing can be pushed down.
    pub fn to_milvus_prefilter(&self, field: &str) -> Option<String> {
        prefilter(&self.expr, field)
    }
}

/// `s` as a string literal of Milvus's expression language: double quotes, with `"`, `\`, line
/// breaks and tabs escaped as its grammar (and milvus-lite's parser) reads them.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn literal(l: &Literal) -> Option<String> {
    match l {
        Literal::String(s) => Some(quote(s)),
        Literal::Bool(b) => Some(b.to_string()),
        Literal::Number(_) | Literal::Null => None,
    }
}

fn key(path: &Path, field: &str) -> Option<String> {
    (path.parts.len() == 1).then(|| format!("{field}[{}]", quote(&path.dotted)))
}

fn prefilter(expr: &Expr, field: &str) -> Option<String> {
    match expr {
        Expr::And(a, b) => match (prefilter(a, field), prefilter(b, field)) {
            (Some(x), Some(y)) => Some(format!("({x} and {y})")),
            (Some(x), None) | (None, Some(x)) => Some(x),
            (None, None) => None,
        },
        Expr::Or(a, b) => Some(format!("({} or {})", prefilter(a, field)?, prefilter(b, field)?)),
        Expr::Compare { path, op: CompareOp::Eq, value } => {
            let (k, v) = (key(path, field)?, literal(value)?);
            Some(format!("({k} == {v} or json_contains({k}, {v}))"))
        }
        Expr::In { path, values } if !values.is_empty() => {
            let k = key(path, field)?;
            let values = values.iter().map(literal).collect::<Option<Vec<_>>>()?;
            // `k in [...]` on a JSON key is Milvus's, but milvus-lite takes only fields there.
            let equals: Vec<String> = values.iter().map(|v| format!("{k} == {v}")).collect();
            Some(format!("({} or json_contains_any({k}, [{}]))", equals.join(" or "), values.join(", ")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(src: &str) -> Option<String> {
        Filter::parse(src).unwrap().to_milvus_prefilter("metadata")
    }

    #[test]
    fn equality_and_in_on_strings_and_booleans_are_pushed_down() {
        assert_eq!(
            pre(r#"lang = "en""#).as_deref(),
            Some(r#"(metadata["lang"] == "en" or json_contains(metadata["lang"], "en"))"#)
        );
        assert_eq!(
            pre(r#"tags in ["a", true] and draft = false"#).as_deref(),
            Some(
                r#"((metadata["tags"] == "a" or metadata["tags"] == true or json_contains_any(metadata["tags"], ["a", true])) and (metadata["draft"] == false or json_contains(metadata["draft"], false)))"#
            )
        );
        assert_eq!(
            pre(r#"z = "a'b\"c\\""#).as_deref(),
            Some(r#"(metadata["z"] == "a'b\"c\\" or json_contains(metadata["z"], "a'b\"c\\"))"#)
        );
    }

    #[test]
    fn what_cannot_be_pushed_down_becomes_no_constraint() {
        for src in [
            "year = 2020",
            "year >= 2020",
            r#"lang != "en""#,
            r#"not lang = "en""#,
            "exists lang",
            "lang = null",
            r#"meta.author = "Ann""#,
            "tags in []",
            r#"lang in ["en", 1]"#,
            r#"lang = "en" or year > 3"#,
        ] {
            assert_eq!(pre(src), None, "{src}");
        }
        // Within `and`, the part that can be pushed down still is.
        assert_eq!(
            pre(r#"lang = "en" and year > 3"#).as_deref(),
            Some(r#"(metadata["lang"] == "en" or json_contains(metadata["lang"], "en"))"#)
        );
        assert_eq!(pre(r#"(a = "x" or b = true) and not c = "y""#).map(|s| s.matches(" or ").count()), Some(3));
    }
}
