//! Checks a tool call's arguments against the JSON Schema the catalogue publishes for
//! the tool, so a call with a missing field, an unknown one or a wrong type is refused
//! as invalid params before anything runs. It knows only the schema keywords the
//! catalogue uses (`type` object, string, array; `properties`, `required`,
//! `additionalProperties: false`, `enum`, `items`); an unknown keyword is ignored.

use serde_json::{Map, Value};

/// `Err` names the first field that does not fit and why.
pub fn check(arguments: &Value, schema: &Value) -> Result<(), String> {
    at(arguments, schema, "arguments")
}

fn at(value: &Value, schema: &Value, path: &str) -> Result<(), String> {
    let wanted = schema.get("type").and_then(Value::as_str);
    match wanted {
        Some("object") => {
            let Value::Object(object) = value else {
                return Err(format!("{path} must be an object"));
            };
            object_fits(object, schema, path)?;
        }
        Some("string") if !value.is_string() => return Err(format!("{path} must be a string")),
        Some("array") => {
            let Value::Array(items) = value else {
                return Err(format!("{path} must be an array"));
            };
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    at(item, item_schema, &format!("{path}[{i}]"))?;
                }
            }
        }
        _ => {}
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!("{path} must be one of {}", names.join(", ")));
    }
    Ok(())
}

fn object_fits(object: &Map<String, Value>, schema: &Value, path: &str) -> Result<(), String> {
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !object.contains_key(name) {
            return Err(format!("{path}.{name} is required"));
        }
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, value) in object {
        let shown: String = name.chars().take(64).collect();
        match properties.get(name) {
            Some(property) => at(value, property, &format!("{path}.{shown}"))?,
            None if closed => return Err(format!("{path}.{shown} is not a known field")),
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arguments_are_held_to_the_published_schema() {
        let schema = crate::gateway::tools::schema("code_exec")
            .and_then(|s| s["function"].get("parameters").cloned())
            .unwrap_or_default();
        assert_eq!(
            check(&json!({"language": "python", "code": "print(1)"}), &schema),
            Ok(())
        );
        let refused = |value: Value| check(&value, &schema).unwrap_err();
        assert_eq!(
            refused(json!({"language": "python"})),
            "arguments.code is required"
        );
        assert_eq!(
            refused(json!({"language": "python", "code": 5})),
            "arguments.code must be a string"
        );
        assert!(
            refused(json!({"language": "cobol", "code": ""}))
                .starts_with("arguments.language must be one of")
        );
        assert_eq!(
            refused(json!({"language": "bash", "code": "", "x": 1})),
            "arguments.x is not a known field"
        );
        assert_eq!(
            refused(json!({"language": "bash", "code": "", "files": [{"name": "a"}]})),
            "arguments.files[0].content is required"
        );
        assert_eq!(refused(json!([1])), "arguments must be an object");
    }
}
