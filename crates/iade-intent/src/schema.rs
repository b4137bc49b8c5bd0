//! Kind schemas: what a kind's resources look like, as declared in `stdlib/`.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::ir::Ir;
use crate::ty::Ty;
use crate::value::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldRole {
    /// Identifies the object in the environment; set in every resource.
    Identity,
    /// Settable; unset means unmanaged unless there is a default.
    Desired,
    /// Observed only; readable, never settable.
    Observed,
}

impl FieldRole {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldRole::Identity => "identity",
            FieldRole::Desired => "desired",
            FieldRole::Observed => "observed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldSchema {
    pub name: Arc<str>,
    pub role: FieldRole,
    pub ty: Ty,
    /// The value an unset field is managed with.
    pub default: Option<Value>,
    /// A predicate over the field's value; slot 0 holds the value.
    pub constraint: Option<Ir>,
    /// The constraint as written, for messages (`mode <= 0o7777`).
    pub constraint_text: Option<String>,
    pub doc: Option<String>,
    /// What a value of the field names (`owner: string refers user.name`): a resource of
    /// that kind whose identity is the value is applied before this one.
    pub refers: Option<Arc<Refers>>,
}

/// The kind (by module and name) and identity field a field's value names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Refers {
    pub module: String,
    pub kind: String,
    pub field: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KindSchema {
    pub name: Arc<str>,
    /// The module that declares it, such as `std.fs`.
    pub module: Arc<str>,
    /// The provider type that serves it (`local`, `exec`, `postgres`).
    pub provider: Option<Arc<str>>,
    pub fields: Vec<FieldSchema>,
    pub doc: Option<String>,
    /// Whether its resources can be refreshed (`notify = [...]` may name them): the kind
    /// declares `refreshable = true` and its provider implements the refresh.
    pub refreshable: bool,
    /// Groups of fields of which a resource sets at most one (`content`, `source`).
    pub exclusive: Vec<Vec<String>>,
    /// `require` statements of the kind: conditions over a resource's fields (slot `i` holds
    /// field `i`; an unset field without a default is unknown, so a check decides only where
    /// the fields it reads are known).
    pub checks: Vec<KindCheck>,
}

/// `require line == "" or matches(line, match) else "…"` in a kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KindCheck {
    pub cond: crate::ir::Ir,
    pub message: Option<crate::ir::Ir>,
    /// The condition as written, for messages.
    pub text: String,
}

impl KindSchema {
    /// The field named `name`. A name that is the schema's own (an attribute's key, which
    /// shares it) is found without comparing text.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        let own = self.fields.iter().find(|f| crate::value::same_str(&f.name, name));
        own.or_else(|| self.fields.iter().find(|f| *f.name == *name))
    }

    pub fn identity_fields(&self) -> impl Iterator<Item = &FieldSchema> {
        self.fields.iter().filter(|f| f.role == FieldRole::Identity)
    }
}
