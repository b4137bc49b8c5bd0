//! The pure builtins. Each returns `Result<Value, String>`; the evaluator attaches the span
//! of the call. Unknown arguments never reach here: the call is unknown then.

use std::sync::Arc;

use crate::eval::{MAX_RANGE, values_equal};
use crate::ir::Builtin;
use crate::ty::describe;
use crate::value::{SecretPart, SecretValue, Value};

type R = Result<Value, String>;

pub(crate) fn call(b: Builtin, args: &[Value]) -> R {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
    match b {
        Builtin::Len => match arg(0) {
            Value::Str(s) => Ok(Value::Int(s.chars().count() as i64)),
            Value::List(l) => Ok(Value::Int(l.len() as i64)),
            Value::Record(r) => Ok(Value::Int(r.len() as i64)),
            other => Err(format!("len needs a string, list or map, not {}", describe(other))),
        },
        Builtin::Upper => string(b, arg(0)).map(|s| Value::str(s.to_uppercase())),
        Builtin::Lower => string(b, arg(0)).map(|s| Value::str(s.to_lowercase())),
        Builtin::Trim => string(b, arg(0)).map(|s| Value::str(s.trim())),
        Builtin::Join => {
            let sep = string(b, arg(1))?;
            let Value::List(items) = arg(0) else {
                return Err(format!("join needs a list of strings, not {}", describe(arg(0))));
            };
            let mut parts = Vec::with_capacity(items.len());
            for item in items.iter() {
                match item.as_text() {
                    Some(t) if !matches!(item, Value::Null) => parts.push(t),
                    _ => return Err(format!("join needs a list of strings; it contains {}", describe(item))),
                }
            }
            Ok(Value::str(parts.join(sep)))
        }
        Builtin::Split => {
            let s = string(b, arg(0))?;
            let sep = string(b, arg(1))?;
            if sep.is_empty() {
                return Err("split needs a separator that is not empty".into());
            }
            Ok(Value::list(s.split(sep).map(Value::str).collect()))
        }
        Builtin::Replace => {
            let s = string(b, arg(0))?;
            let from = string(b, arg(1))?;
            if from.is_empty() {
                return Err("replace needs a `from` that is not empty".into());
            }
            Ok(Value::str(s.replace(from, string(b, arg(2))?)))
        }
        Builtin::Contains => match (arg(0), arg(1)) {
            (Value::Str(h), Value::Str(n)) => Ok(Value::Bool(h.contains(n.as_ref()))),
            (Value::List(items), n) => Ok(Value::Bool(items.iter().any(|i| values_equal(i, n)))),
            (Value::Record(m), Value::Str(k)) => Ok(Value::Bool(m.contains_key(k.as_ref()))),
            (h, n) => Err(format!("contains cannot look for {} in {}", describe(n), describe(h))),
        },
        Builtin::StartsWith => Ok(Value::Bool(string(b, arg(0))?.starts_with(string(b, arg(1))?))),
        Builtin::EndsWith => Ok(Value::Bool(string(b, arg(0))?.ends_with(string(b, arg(1))?))),
        Builtin::Matches => {
            let pattern = string(b, arg(1))?;
            let re = regex::Regex::new(pattern)
                .map_err(|e| format!("`{pattern}` is not a valid regular expression: {e}"))?;
            Ok(Value::Bool(re.is_match(string(b, arg(0))?)))
        }
        Builtin::Keys => match arg(0) {
            Value::Record(m) => Ok(Value::list(m.keys().map(|k| Value::str(k.as_str())).collect())),
            other => Err(format!("keys needs a map, not {}", describe(other))),
        },
        Builtin::Values => match arg(0) {
            Value::Record(m) => Ok(Value::list(m.values().cloned().collect())),
            other => Err(format!("values needs a map, not {}", describe(other))),
        },
        Builtin::Range => {
            let (start, end) = match args {
                [Value::Int(e)] => (0, *e),
                [Value::Int(s), Value::Int(e)] => (*s, *e),
                _ => return Err("range needs one or two ints".into()),
            };
            if end.saturating_sub(start) > MAX_RANGE {
                return Err(format!("range would have more than {MAX_RANGE} elements"));
            }
            Ok(Value::list((start..end).map(Value::Int).collect()))
        }
        Builtin::Get => match (arg(0), arg(1)) {
            (Value::Record(m), Value::Str(k)) => {
                Ok(m.get(k.as_ref()).cloned().unwrap_or_else(|| arg(2).clone()))
            }
            (Value::Record(_), other) => Err(format!("get needs a string key, not {}", describe(other))),
            (other, _) => Err(format!("get needs a map, not {}", describe(other))),
        },
        Builtin::Concat => {
            let mut out = Vec::new();
            for a in args {
                match a {
                    Value::List(items) => out.extend(items.iter().cloned()),
                    other => return Err(format!("concat needs lists, not {}", describe(other))),
                }
            }
            Ok(Value::list(out))
        }
        Builtin::Basename => {
            let p = string(b, arg(0))?;
            let trimmed = p.trim_end_matches('/');
            Ok(Value::str(trimmed.rsplit('/').next().unwrap_or(trimmed)))
        }
        Builtin::Dirname => {
            let p = string(b, arg(0))?;
            let trimmed = p.trim_end_matches('/');
            Ok(Value::str(match trimmed.rfind('/') {
                Some(0) => "/",
                Some(i) => &trimmed[..i],
                None => ".",
            }))
        }
        Builtin::JoinPath => {
            let mut out = String::new();
            for a in args {
                let part = string(b, a)?;
                if part.starts_with('/') || out.is_empty() {
                    out = part.to_string();
                } else {
                    if !out.ends_with('/') {
                        out.push('/');
                    }
                    out.push_str(part);
                }
            }
            Ok(Value::str(out))
        }
        Builtin::ToString => match arg(0) {
            Value::Secret(_) => Ok(arg(0).clone()),
            v => Ok(Value::str(v.as_text().unwrap_or_else(|| v.to_string()))),
        },
        Builtin::Secret => {
            let name = string(b, arg(0))?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("secret names use letters, digits and `_`; \"{name}\" does not"));
            }
            Ok(Value::Secret(Arc::new(SecretValue { parts: vec![SecretPart::Named(name.to_string())] })))
        }
        Builtin::Include | Builtin::Template | Builtin::Intent | Builtin::Observe => {
            Err(format!("`{}` cannot be called here", b.name()))
        }
    }
}

fn string(b: Builtin, v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Secret(_) => Err(format!("{} cannot look inside a secret", b.name())),
        other => Err(format!("{} needs a string, not {}", b.name(), describe(other))),
    }
}
