//! Types, and the check of a value against a type.
//!
//! Checking also *converts* where the type gives a literal its meaning: an integer checked
//! against `mode` becomes a [`Value::Mode`], so it prints in octal from then on.

use std::collections::BTreeMap;
use std::fmt;

use crate::value::{Value, is_ident};

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Ty {
    Any,
    Bool,
    Int,
    Mode,
    String,
    Path,
    /// A file of the stack, named relative to the declaring file; the compiler resolves it to
    /// an absolute path and checks that it can be read.
    Source,
    Secret,
    Null,
    List(Box<Ty>),
    Map(Box<Ty>),
    Record(BTreeMap<String, Ty>),
    /// `enum(present, absent)`
    Enum(Vec<String>),
    /// A string literal type, `"dev"`.
    StrLit(String),
    /// An integer literal type, `8080`.
    IntLit(i64),
    /// `"dev" | "prod"`
    Union(Vec<Ty>),
    Optional(Box<Ty>),
    /// A resource of a kind, by the kind's name.
    Kind(String),
}

impl Ty {
    /// The enum members this type accepts as bare names, if it is (optionally) an enum.
    pub fn enum_members(&self) -> Option<&[String]> {
        match self {
            Ty::Enum(m) => Some(m),
            Ty::Optional(t) => t.enum_members(),
            _ => None,
        }
    }

    /// The type of the elements of a list or the values of a map.
    pub fn element(&self) -> Option<&Ty> {
        match self {
            Ty::List(t) | Ty::Map(t) => Some(t),
            Ty::Optional(t) => t.element(),
            _ => None,
        }
    }

    /// The type of field `name` of a record type.
    pub fn field(&self, name: &str) -> Option<&Ty> {
        match self {
            Ty::Record(fields) => fields.get(name),
            Ty::Map(t) => Some(t),
            Ty::Optional(t) => t.field(name),
            _ => None,
        }
    }

    /// Whether values of this type are integers (so bit operations make sense).
    pub fn is_integer(&self) -> bool {
        match self {
            Ty::Int | Ty::Mode | Ty::IntLit(_) => true,
            Ty::Union(ts) => ts.iter().all(Ty::is_integer),
            _ => false,
        }
    }

    /// Whether values of this type are strings.
    pub fn is_string(&self) -> bool {
        match self {
            Ty::String | Ty::Path | Ty::Source | Ty::StrLit(_) => true,
            Ty::Union(ts) => ts.iter().all(Ty::is_string),
            _ => false,
        }
    }

    /// Checks `value` against this type, converting integers to modes where a mode is
    /// expected. Unknown values pass every type: they are checked once they are known.
    pub fn check(&self, value: &Value) -> Result<Value, String> {
        match (self, value) {
            (_, Value::Unknown(_)) | (Ty::Any, _) => Ok(value.clone()),
            (Ty::Bool, Value::Bool(_)) | (Ty::Int, Value::Int(_)) | (Ty::Null, Value::Null) => {
                Ok(value.clone())
            }
            (Ty::Int, Value::Mode(m)) => Ok(Value::Int(*m)),
            (Ty::Mode, Value::Int(m) | Value::Mode(m)) => {
                if *m >= 0 {
                    Ok(Value::Mode(*m))
                } else {
                    Err(format!("{m} is not a file mode: modes are not negative"))
                }
            }
            (Ty::Path | Ty::Source, Value::Str(s)) if s.is_empty() => Err("a path may not be empty".into()),
            (Ty::String | Ty::Path | Ty::Source, Value::Str(_)) => Ok(value.clone()),
            (Ty::String | Ty::Path | Ty::Secret, Value::Secret(_)) => Ok(value.clone()),
            // A plain string given where a secret is expected becomes one: from here on it is
            // redacted wherever it is shown.
            (Ty::Secret, Value::Str(s)) => {
                Ok(Value::Secret(std::sync::Arc::new(crate::value::SecretValue::hidden(s.to_string()))))
            }
            (Ty::StrLit(want), Value::Str(s)) if want.as_str() == s.as_ref() => Ok(value.clone()),
            (Ty::IntLit(want), Value::Int(i)) if want == i => Ok(value.clone()),
            (Ty::Enum(members), Value::Enum(e)) if members.iter().any(|m| m.as_str() == e.as_ref()) => {
                Ok(value.clone())
            }
            (Ty::Enum(members), Value::Str(s)) if members.iter().any(|m| m.as_str() == s.as_ref()) => {
                Ok(Value::Enum(s.clone()))
            }
            (Ty::Optional(_), Value::Null) => Ok(Value::Null),
            (Ty::Optional(t), _) => t.check(value),
            (Ty::Union(ts), _) => ts
                .iter()
                .find_map(|t| t.check(value).ok())
                .ok_or_else(|| format!("expected {self}, found {}", describe(value))),
            (Ty::List(t), Value::List(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    out.push(t.check(v).map_err(|e| format!("element {i}: {e}"))?);
                }
                Ok(Value::list(out))
            }
            (Ty::Map(t), Value::Record(entries)) => {
                let mut out = BTreeMap::new();
                for (k, v) in entries.iter() {
                    out.insert(k.clone(), t.check(v).map_err(|e| format!("entry `{k}`: {e}"))?);
                }
                Ok(Value::record(out))
            }
            (Ty::Record(fields), Value::Record(entries)) => {
                let mut out = BTreeMap::new();
                for (k, v) in entries.iter() {
                    let Some(t) = fields.get(k) else {
                        return Err(format!("unexpected field `{k}` for {self}"));
                    };
                    out.insert(k.clone(), t.check(v).map_err(|e| format!("field `{k}`: {e}"))?);
                }
                if let Some((k, _)) = fields
                    .iter()
                    .find(|(k, t)| !entries.contains_key(*k) && !matches!(t, Ty::Optional(_) | Ty::Any))
                {
                    return Err(format!("field `{k}` is missing for {self}"));
                }
                Ok(Value::record(out))
            }
            (Ty::Kind(k), Value::Resource(r)) if *r.kind == **k => Ok(value.clone()),
            _ => Err(format!("expected {self}, found {}", describe(value))),
        }
    }
}

/// A value as messages name it: its type and, unless secret, the value itself.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Secret(_) => "a secret".to_string(),
        Value::Unknown(_) => "an unknown value".to_string(),
        Value::List(_) | Value::Record(_) => value.type_name().to_string(),
        Value::Resource(r) => format!("resource {} of kind {}", r.id, r.kind),
        Value::Enum(e) => format!("`{e}`"),
        _ => format!("{} {value}", value.type_name()),
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Any => f.write_str("any"),
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Mode => f.write_str("mode"),
            Ty::String => f.write_str("string"),
            Ty::Path => f.write_str("path"),
            Ty::Source => f.write_str("source"),
            Ty::Secret => f.write_str("secret"),
            Ty::Null => f.write_str("null"),
            Ty::List(t) => write!(f, "list({t})"),
            Ty::Map(t) => write!(f, "map({t})"),
            Ty::Record(fields) => {
                f.write_str("{ ")?;
                for (i, (k, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if is_ident(k) {
                        write!(f, "{k}: {t}")?;
                    } else {
                        write!(f, "{k:?}: {t}")?;
                    }
                }
                f.write_str(" }")
            }
            Ty::Enum(members) => write!(f, "enum({})", members.join(", ")),
            Ty::StrLit(s) => write!(f, "{s:?}"),
            Ty::IntLit(i) => write!(f, "{i}"),
            Ty::Union(ts) => {
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{t}")?;
                }
                Ok(())
            }
            Ty::Optional(t) => match **t {
                Ty::Union(_) => write!(f, "({t})?"),
                _ => write!(f, "{t}?"),
            },
            Ty::Kind(k) => f.write_str(k),
        }
    }
}
