//! Reading the APIs' JSON answers leniently: a number may come as a string (the health
//! score is a decimal string), and a missing field reads as nothing rather than an error.

use serde_json::Value;

/// A JSON number or numeric string as f64.
pub fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A JSON integer (0 when absent).
pub fn int(v: &Value) -> i64 {
    num(v).map_or(0, |x| x as i64)
}

/// A JSON string or number as text (empty when absent).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
