//! The filter language translated to a PostgreSQL boolean expression over a `jsonb` column, with
//! every value and path bound as a parameter (nothing from the filter is spliced into the SQL).
//!
//! The expression decides exactly what [`Filter::matches`] decides, rule for rule (the
//! conformance suite checks it document by document against the embedded store):
//!
//! * a path is `COALESCE(m -> 'a.b', m #> '{a,b}')`: the dotted top-level key when present, else
//!   the nested walk (names start with a letter or `_`, so `#>` never indexes an array);
//! * an array field holds a condition when one of its elements does (`jsonb_array_elements`);
//! * numbers compare as `float8`, as `serde_json::Value::as_f64` does; strings compare by bytes
//!   (`COLLATE "C"`, Rust's `str` order), so ISO dates order the same;
//! * every leaf is `TRUE` or `FALSE`, never SQL `NULL`, so `not` and `!=` match documents that
//!   lack the field, as in the embedded store. `CASE` guards every cast: SQL may evaluate the
//!   operands of `AND` in any order.

use super::{CompareOp, Expr, Filter, Literal, Path};

/// A parameter of a translated filter, in order (`$first`, `$first + 1`, …). Backends bind them
/// with these SQL types.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    /// `text`
    Text(String),
    /// `text[]` (a nested path)
    TextArray(Vec<String>),
    /// `float8`
    Float(f64),
    /// `boolean`
    Bool(bool),
}

/// A filter as SQL: a boolean expression and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    pub sql: String,
    pub params: Vec<SqlParam>,
}

impl Filter {
    /// The filter over the `jsonb` column (or expression) `column`, its parameters numbered from
    /// `$first_param`. `column` is written into the SQL as given: pass a trusted identifier.
    pub fn to_sql(&self, column: &str, first_param: usize) -> SqlFilter {
        let mut t = Translator { column, first: first_param, params: Vec::new(), aliases: 0 };
        let sql = t.expr(&self.expr);
        SqlFilter { sql, params: t.params }
    }
}

struct Translator<'a> {
    column: &'a str,
    first: usize,
    params: Vec<SqlParam>,
    aliases: usize,
}

impl Translator<'_> {
    /// Bind `p` and return its placeholder with its type cast.
    fn bind(&mut self, p: SqlParam) -> String {
        let cast = match p {
            SqlParam::Text(_) => "text",
            SqlParam::TextArray(_) => "text[]",
            SqlParam::Float(_) => "float8",
            SqlParam::Bool(_) => "boolean",
        };
        self.params.push(p);
        format!("${}::{cast}", self.first + self.params.len() - 1)
    }

    fn path(&mut self, path: &Path) -> String {
        let column = self.column;
        let key = self.bind(SqlParam::Text(path.dotted.clone()));
        if path.parts.len() == 1 {
            format!("({column} -> {key})")
        } else {
            let parts = self.bind(SqlParam::TextArray(path.parts.clone()));
            format!("COALESCE({column} -> {key}, {column} #> {parts})")
        }
    }

    /// `pred` holds for the value at `path` or, for an array, for one of its elements.
    fn any(&mut self, path: &Path, pred: impl Fn(&str) -> String) -> String {
        let v = self.path(path);
        self.aliases += 1;
        let e = format!("_ember_e{}", self.aliases);
        format!(
            "(CASE WHEN {v} IS NULL THEN FALSE WHEN jsonb_typeof({v}) = 'array' THEN EXISTS (SELECT 1 FROM \
             jsonb_array_elements({v}) AS {e}(x) WHERE {}) ELSE {} END)",
            pred(&format!("{e}.x")),
            pred(&v)
        )
    }

    /// The SQL test `x = literal` on one `jsonb` value `x`, given the literal's placeholder.
    fn equals(literal: &Literal, placeholder: &str, x: &str) -> String {
        match literal {
            Literal::String(_) => format!("(jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') = {placeholder})"),
            Literal::Number(_) => {
                format!("(CASE WHEN jsonb_typeof({x}) = 'number' THEN ({x})::float8 = {placeholder} ELSE FALSE END)")
            }
            Literal::Bool(_) => format!("({x} = to_jsonb({placeholder}))"),
            Literal::Null => format!("(jsonb_typeof({x}) = 'null')"),
        }
    }

    fn literal(&mut self, literal: &Literal) -> String {
        match literal {
            Literal::String(s) => self.bind(SqlParam::Text(s.clone())),
            Literal::Number(n) => self.bind(SqlParam::Float(*n)),
            Literal::Bool(b) => self.bind(SqlParam::Bool(*b)),
            Literal::Null => String::new(),
        }
    }

    fn expr(&mut self, expr: &Expr) -> String {
        match expr {
            Expr::And(a, b) => format!("({} AND {})", self.expr(a), self.expr(b)),
            Expr::Or(a, b) => format!("({} OR {})", self.expr(a), self.expr(b)),
            Expr::Not(e) => format!("(NOT {})", self.expr(e)),
            Expr::Exists(path) => {
                let v = self.path(path);
                format!("COALESCE(jsonb_typeof({v}) <> 'null', FALSE)")
            }
            Expr::In { path, values } => {
                if values.is_empty() {
                    return "FALSE".into();
                }
                let bound: Vec<(Literal, String)> = values.iter().map(|l| (l.clone(), self.literal(l))).collect();
                self.any(path, |x| {
                    let tests: Vec<String> = bound.iter().map(|(l, p)| Self::equals(l, p, x)).collect();
                    format!("({})", tests.join(" OR "))
                })
            }
            Expr::Compare { path, op, value } => {
                let ordering = !matches!(op, CompareOp::Eq | CompareOp::Ne);
                if ordering && matches!(value, Literal::Bool(_) | Literal::Null) {
                    // Booleans and null have no order: nothing matches (and nothing is bound).
                    return "FALSE".into();
                }
                let placeholder = self.literal(value);
                match op {
                    CompareOp::Eq => self.any(path, |x| Self::equals(value, &placeholder, x)),
                    CompareOp::Ne => format!("(NOT {})", self.any(path, |x| Self::equals(value, &placeholder, x))),
                    CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => {
                        let symbol = op.symbol();
                        match value {
                            Literal::Number(_) => self.any(path, |x| {
                                format!(
                                    "(CASE WHEN jsonb_typeof({x}) = 'number' THEN ({x})::float8 {symbol} {placeholder} \
                                     ELSE FALSE END)"
                                )
                            }),
                            Literal::String(_) => self.any(path, |x| {
                                format!(
                                    "(CASE WHEN jsonb_typeof({x}) = 'string' THEN ({x} #>> '{{}}') COLLATE \"C\" \
                                     {symbol} {placeholder} ELSE FALSE END)"
                                )
                            }),
                            Literal::Bool(_) | Literal::Null => "FALSE".into(),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_never_spliced() {
        let f = Filter::parse(r#"lang = "en'; drop table x; --" and year >= 2020 and meta.a in [true, null]"#).unwrap();
        let sql = f.to_sql("metadata", 3);
        assert!(!sql.sql.contains("drop table"), "{}", sql.sql);
        assert_eq!(
            sql.params,
            vec![
                SqlParam::Text("en'; drop table x; --".into()),
                SqlParam::Text("lang".into()),
                SqlParam::Float(2020.0),
                SqlParam::Text("year".into()),
                SqlParam::Bool(true),
                SqlParam::Text("meta.a".into()),
                SqlParam::TextArray(vec!["meta".into(), "a".into()]),
            ]
        );
        assert!(sql.sql.contains("$3::text") && sql.sql.contains("$9::text[]") && !sql.sql.contains("$10"));
    }

    #[test]
    fn orderings_on_booleans_and_empty_lists_are_false() {
        assert_eq!(
            Filter::parse("a < true").unwrap().to_sql("m", 1),
            SqlFilter { sql: "FALSE".into(), params: vec![] }
        );
        assert_eq!(Filter::parse("a >= null").unwrap().to_sql("m", 1).params, vec![]);
        assert_eq!(Filter::parse("a in []").unwrap().to_sql("m", 1).sql, "FALSE");
        assert_eq!(Filter::parse("not a in []").unwrap().to_sql("m", 1).sql, "(NOT FALSE)");
    }
}
