//! Evaluated values.
//!
//! Values are cheap to clone (shared behind `Arc`) and compare structurally, so the compiler's
//! incremental database can tell an unchanged result from a changed one. Two values never
//! print their content: [`Value::Secret`] (always `<redacted>`) and [`Value::Unknown`] (its
//! reason).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// Permission bits: an integer that is always shown in octal (`0o640`).
    Mode(i64),
    Str(Arc<str>),
    List(Arc<Vec<Value>>),
    /// Records and maps: keys in a defined order, so printing and hashing are stable.
    Record(Arc<BTreeMap<String, Value>>),
    /// A bare enum member such as `present` or `high`.
    Enum(Arc<str>),
    /// A resource: intended (in a policy) or observed (in a control).
    Resource(Arc<ResourceValue>),
    /// A value built from secrets; only a provider call may resolve it.
    Secret(Arc<SecretValue>),
    /// A value not known yet: unmanaged, known only after observation, or not observable.
    Unknown(Arc<Unknown>),
}

/// A resource as rules see it: every field of its kind, with unknown for the ones that have no
/// value (unmanaged fields on intent, or fields a provider could not observe).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceValue {
    /// `file.config`, or for an unmanaged object found by `observe`, `file[/etc/passwd]`.
    pub id: Arc<str>,
    pub kind: Arc<str>,
    /// The fields that have a value.
    pub fields: crate::VecMap<Arc<str>, Value>,
    /// Every field of the kind with its role (shared by all resources of the kind): a field
    /// without a value is unknown, for the reason its role gives.
    pub schema: Arc<Vec<(String, crate::schema::FieldRole)>>,
}

/// Whether two strings are one string in memory (a schema's field name and a key that shares
/// it): found without comparing text.
pub(crate) fn same_str(a: &str, b: &str) -> bool {
    std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()
}

impl ResourceValue {
    /// A field's value: its value, or unknown with the reason; `None` if the kind has no
    /// such field.
    pub fn field(&self, name: &str) -> Option<Value> {
        // A name that is the kind's own string (as lowering names a kind's fields) is found
        // by its address; any other is compared as text.
        let own = self.fields.iter().find(|(k, _)| same_str(k, name));
        if let Some(v) = own.map(|(_, v)| v).or_else(|| self.fields.get(name)) {
            return Some(v.clone());
        }
        let (_, role) = self.schema.iter().find(|(n, _)| n == name)?;
        Some(Value::unknown(match role {
            crate::schema::FieldRole::Observed => {
                format!("`{}.{name}` is known only after observation", self.id)
            }
            _ => format!("`{}.{name}` is unmanaged", self.id),
        }))
    }

    /// The names of every field of the kind.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.schema.iter().map(|(n, _)| n.as_str())
    }
}

/// Why a value is unknown; said in verdicts ("unknown: `file.config.owner` is unmanaged").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Unknown {
    pub reason: String,
}

/// A string assembled from literal text and named secrets, resolved by the engine only inside
/// a provider call. Its `Debug` and `Display` never show the literal parts either, since they
/// may be fragments of a credential (`"postgres://app:${password}@db"`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretValue {
    pub parts: Vec<SecretPart>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SecretPart {
    /// Literal text written around a secret (`"postgres://app:"`).
    Text(String),
    /// Text that is itself secret: the value of a `secret`-typed param.
    Hidden(String),
    /// A secret supplied to the run under this name.
    Named(String),
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for SecretPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl SecretValue {
    /// The names of the secrets this value is built from (names are not secret).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            SecretPart::Named(n) => Some(n.as_str()),
            SecretPart::Text(_) | SecretPart::Hidden(_) => None,
        })
    }

    /// A secret made of one piece of secret text (a value that came from a secret).
    pub fn hidden(text: impl Into<String>) -> SecretValue {
        SecretValue { parts: vec![SecretPart::Hidden(text.into())] }
    }
}

impl Value {
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub fn unknown(reason: impl Into<String>) -> Value {
        Value::Unknown(Arc::new(Unknown { reason: reason.into() }))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items))
    }

    pub fn record(entries: BTreeMap<String, Value>) -> Value {
        Value::Record(Arc::new(entries))
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown(_))
    }

    /// The first unknown found in this value, looking into lists and records.
    pub fn find_unknown(&self) -> Option<&Unknown> {
        match self {
            Value::Unknown(u) => Some(u),
            Value::List(items) => items.iter().find_map(Value::find_unknown),
            Value::Record(entries) => entries.values().find_map(Value::find_unknown),
            _ => None,
        }
    }

    /// Whether a secret hides anywhere in this value.
    pub fn contains_secret(&self) -> bool {
        match self {
            Value::Secret(_) => true,
            Value::List(items) => items.iter().any(Value::contains_secret),
            Value::Record(entries) => entries.values().any(Value::contains_secret),
            _ => false,
        }
    }

    /// How the type of this value is named in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Mode(_) => "mode",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Record(_) => "record",
            Value::Enum(_) => "enum member",
            Value::Resource(_) => "resource",
            Value::Secret(_) => "secret",
            Value::Unknown(_) => "unknown",
        }
    }

    /// The value as it is interpolated into a string; `None` for values that have no text
    /// form (lists, records, resources) or that must not be shown (secrets, unknowns).
    pub fn as_text(&self) -> Option<String> {
        let mut out = String::new();
        self.push_text(&mut out).then_some(out)
    }

    /// Appends [`Value::as_text`] to `out`, without a string of its own: whether the value
    /// has a text.
    pub fn push_text(&self, out: &mut String) -> bool {
        use std::fmt::Write;
        match self {
            Value::Null => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Mode(m) => out.push_str(&format_mode(*m)),
            Value::Str(s) => out.push_str(s),
            Value::Enum(e) => out.push_str(e),
            _ => return false,
        }
        true
    }
}

/// `0o640`, at least three octal digits (`0o002`); negative modes cannot come from a valid
/// source but still print unambiguously.
pub fn format_mode(m: i64) -> String {
    if m < 0 { format!("-0o{:03o}", m.unsigned_abs()) } else { format!("0o{m:03o}") }
}

/// The value as it is written in iade source, as messages and plans show it: strings quoted,
/// modes in octal, secrets `<redacted>`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Mode(m) => f.write_str(&format_mode(*m)),
            Value::Str(s) => write!(f, "{:?}", s.as_ref()),
            Value::Enum(e) => f.write_str(e),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Record(entries) => {
                if entries.is_empty() {
                    return f.write_str("{}");
                }
                f.write_str("{ ")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if is_ident(k) {
                        write!(f, "{k} = {v}")?;
                    } else {
                        write!(f, "{k:?} = {v}")?;
                    }
                }
                f.write_str(" }")
            }
            Value::Resource(r) => f.write_str(&r.id),
            Value::Secret(_) => f.write_str("<redacted>"),
            Value::Unknown(_) => f.write_str("(unknown)"),
        }
    }
}

pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// JSON form: plain JSON for plain values; modes as `{"mode": "0o640"}`, enum members as
/// `{"enum": "present"}`, secrets as `{"secret": "<redacted>"}`, unknowns as
/// `{"unknown": reason}`, resources as `{"resource": id}`.
impl Value {
    /// A value as [`Serialize`] wrote it, read back: plain data, enums (`{"enum": …}`) and
    /// modes (`{"mode": "0o644"}`). What cannot come back as itself (a secret, an unknown, a
    /// resource reference) is its JSON text.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::str(n.to_string().as_str()),
            },
            serde_json::Value::String(s) => Value::str(s.as_str()),
            serde_json::Value::Array(items) => {
                Value::List(Arc::new(items.iter().map(Value::from_json).collect()))
            }
            serde_json::Value::Object(m) => {
                let tagged =
                    |tag: &str| if m.len() == 1 { m.get(tag).and_then(|v| v.as_str()) } else { None };
                if let Some(e) = tagged("enum") {
                    return Value::Enum(e.into());
                }
                if let Some(mode) =
                    tagged("mode").and_then(|t| i64::from_str_radix(t.trim_start_matches("0o"), 8).ok())
                {
                    return Value::Mode(mode);
                }
                if ["secret", "unknown", "resource"].iter().any(|t| tagged(t).is_some()) {
                    return Value::str(json.to_string().as_str());
                }
                Value::Record(Arc::new(m.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect()))
            }
        }
    }
}

/// Two forms. A human-readable format (JSON: the intent graph, plans, reports) gets the
/// documented form, where a mode is `{"mode": "0o640"}`, a resource its id and a secret
/// `<redacted>`. A binary format (the compile cache) gets every variant as it is, so it reads
/// back equal; a secret is refused there, so no part of one is ever stored.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return self.serialize_exact(s);
        }
        let tagged = |s: S, tag: &str, v: &str| {
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry(tag, v)?;
            m.end()
        };
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Mode(m) => tagged(s, "mode", &format_mode(*m)),
            Value::Str(v) => s.serialize_str(v),
            Value::Enum(e) => tagged(s, "enum", e),
            Value::Resource(r) => tagged(s, "resource", &r.id),
            Value::Secret(_) => tagged(s, "secret", "<redacted>"),
            Value::Unknown(u) => tagged(s, "unknown", &u.reason),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items.iter() {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Record(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries.iter() {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

/// [`Value`]'s variants as a binary format stores them (see its `Serialize`).
#[derive(Deserialize)]
#[serde(rename = "Value")]
enum Exact {
    Null,
    Bool(bool),
    Int(i64),
    Mode(i64),
    Str(String),
    List(Vec<Value>),
    Record(BTreeMap<String, Value>),
    Enum(String),
    Resource(ResourceValue),
    Unknown(String),
}

impl Value {
    fn serialize_exact<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit_variant("Value", 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant("Value", 1, "Bool", b),
            Value::Int(i) => s.serialize_newtype_variant("Value", 2, "Int", i),
            Value::Mode(m) => s.serialize_newtype_variant("Value", 3, "Mode", m),
            Value::Str(v) => s.serialize_newtype_variant("Value", 4, "Str", &**v),
            Value::List(items) => s.serialize_newtype_variant("Value", 5, "List", &**items),
            Value::Record(entries) => s.serialize_newtype_variant("Value", 6, "Record", &**entries),
            Value::Enum(e) => s.serialize_newtype_variant("Value", 7, "Enum", &**e),
            Value::Resource(r) => s.serialize_newtype_variant("Value", 8, "Resource", &**r),
            Value::Unknown(u) => s.serialize_newtype_variant("Value", 9, "Unknown", &u.reason),
            Value::Secret(_) => Err(S::Error::custom("a value built from a secret is never stored")),
        }
    }
}

/// Reads the binary form only (see [`Value`]'s `Serialize`): the documented JSON form loses
/// what a resource and a secret hold, so it is never read back.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        if d.is_human_readable() {
            return Err(serde::de::Error::custom("values are read back from the binary form only"));
        }
        Ok(match Exact::deserialize(d)? {
            Exact::Null => Value::Null,
            Exact::Bool(b) => Value::Bool(b),
            Exact::Int(i) => Value::Int(i),
            Exact::Mode(m) => Value::Mode(m),
            Exact::Str(v) => Value::str(v),
            Exact::List(items) => Value::List(Arc::new(items)),
            Exact::Record(entries) => Value::Record(Arc::new(entries)),
            Exact::Enum(e) => Value::Enum(e.into()),
            Exact::Resource(r) => Value::Resource(Arc::new(r)),
            Exact::Unknown(reason) => Value::unknown(reason),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Value;

    #[test]
    fn data_written_as_json_reads_back_as_the_same_value() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Int(-3),
            Value::str("a \"path\""),
            Value::Enum("connect".into()),
            Value::Mode(0o640),
            Value::List(std::sync::Arc::new(vec![Value::str("x"), Value::Enum("y".into())])),
        ];
        for v in values {
            let json = serde_json::to_value(&v).expect("serializes");
            assert_eq!(Value::from_json(&json), v, "{json}");
        }
    }

    #[test]
    fn every_value_but_a_secret_reads_back_equal_from_the_binary_form() {
        use std::collections::BTreeMap;
        use std::sync::Arc;
        let resource = super::ResourceValue {
            id: "file.a".into(),
            kind: "file".into(),
            fields: crate::VecMap::from([("mode".into(), Value::Mode(0o644))]),
            schema: Arc::new(vec![("mode".into(), crate::FieldRole::Desired)]),
        };
        let value = Value::List(Arc::new(vec![
            Value::Null,
            Value::Bool(false),
            Value::Int(7),
            Value::Mode(0o640),
            Value::str("text"),
            Value::Enum("present".into()),
            Value::record(BTreeMap::from([("k".to_string(), Value::Int(1))])),
            Value::Resource(Arc::new(resource)),
            Value::unknown("`file.a.size` is known only after observation"),
        ]));
        // The compile cache's format.
        let bytes = postcard::to_stdvec(&value).expect("serializes");
        let back: Value = postcard::from_bytes(&bytes).expect("reads back");
        assert_eq!(back, value);
        // The documented JSON form is never read back: it loses what a resource holds.
        assert!(serde_json::from_str::<Value>("1").is_err());
        let secret = Value::Secret(Arc::new(super::SecretValue::hidden("hunter2")));
        let mut bytes = [0u8; 256];
        assert!(postcard::to_slice(&Value::List(Arc::new(vec![secret])), &mut bytes).is_err());
        assert!(!String::from_utf8_lossy(&bytes).contains("hunter2"), "no part of a secret is written");
    }
}
