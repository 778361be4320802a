//! Embedding inputs as the APIs accept them: a string, an array of strings, an array of token
//! ids, or an array of arrays of token ids, checked item by item so an error names the item.

use serde_json::Value;

use crate::batcher::Input;
use crate::error::ApiError;

/// The inputs in `value` (the request field `field`).
pub fn parse_inputs(value: &Value, field: &str) -> Result<Vec<Input>, ApiError> {
    let shapes = "a string, an array of strings, an array of token ids or an array of arrays of token ids";
    match value {
        Value::String(s) => Ok(vec![Input::Text(s.clone())]),
        Value::Array(items) if items.is_empty() => {
            Err(ApiError::invalid_field(field, "the list of inputs is empty; send at least one input"))
        }
        Value::Array(items) => match &items[0] {
            Value::String(_) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(Input::Text(s.clone())),
                    other => Err(item_error(field, i, "a string like the first item", other)),
                })
                .collect(),
            Value::Number(_) => Ok(vec![Input::Ids(token_ids(items, field, None)?)]),
            Value::Array(_) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Array(ids) if ids.is_empty() => {
                        Err(ApiError::invalid_field(&format!("{field}[{i}]"), "an empty list of token ids"))
                    }
                    Value::Array(ids) => Ok(Input::Ids(token_ids(ids, field, Some(i))?)),
                    other => Err(item_error(field, i, "an array of token ids like the first item", other)),
                })
                .collect(),
            other => Err(item_error(field, 0, shapes, other)),
        },
        other => Err(ApiError::wrong_type(field, format!("expected {shapes}, got {}", type_name(other)))),
    }
}

fn token_ids(items: &[Value], field: &str, outer: Option<usize>) -> Result<Vec<u32>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
                let at = match outer {
                    Some(o) => format!("{field}[{o}][{i}]"),
                    None => format!("{field}[{i}]"),
                };
                ApiError::wrong_type(&at, format!("expected a token id (an integer ≥ 0), got {}", describe(v)))
            })
        })
        .collect()
}

fn item_error(field: &str, index: usize, expected: &str, got: &Value) -> ApiError {
    ApiError::wrong_type(&format!("{field}[{index}]"), format!("expected {expected}, got {}", type_name(got)))
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => type_name(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_four_shapes() {
        assert_eq!(parse_inputs(&json!("a"), "input").unwrap(), [Input::Text("a".into())]);
        assert_eq!(
            parse_inputs(&json!(["a", ""]), "input").unwrap(),
            [Input::Text("a".into()), Input::Text(String::new())]
        );
        assert_eq!(parse_inputs(&json!([101, 7592, 102]), "input").unwrap(), [Input::Ids(vec![101, 7592, 102])]);
        assert_eq!(
            parse_inputs(&json!([[101, 102], [7]]), "input").unwrap(),
            [Input::Ids(vec![101, 102]), Input::Ids(vec![7])]
        );
    }

    #[test]
    fn names_the_item_at_fault() {
        let e = parse_inputs(&json!(["a", 3]), "input").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[1]"));
        let e = parse_inputs(&json!([[1, 2], [3, -4]]), "inputs").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("inputs[1][1]"));
        assert!(e.message.contains("-4"), "{}", e.message);
        let e = parse_inputs(&json!([1, 2.5]), "input").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[1]"));
        let e = parse_inputs(&json!(5), "input").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = parse_inputs(&json!([]), "input").unwrap_err();
        assert!(e.message.contains("empty"));
        let e = parse_inputs(&json!([{"text": "a"}]), "input").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[0]"));
        let e = parse_inputs(&json!([1, 4294967296u64]), "input").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[1]"));
    }
}
