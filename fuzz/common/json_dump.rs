//! `json.dumps(value)` for a parsed `pyjson::Json` (separators `", "` and `": "`, strings
//! through `pyjson::push_string`, numbers as their wire text): the canonical form a round trip
//! through the strict parser must reproduce.

use peershare::core::pyjson::{self, Json};

pub fn dump(value: &Json) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Json, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(text) => out.push_str(text),
        Json::String(s) => pyjson::push_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            out.push(']');
        }
        Json::Object(pairs) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                pyjson::push_string(out, k);
                out.push_str(": ");
                write(v, out);
            }
            out.push('}');
        }
    }
}
