//! The semantic core of iade: values, types, kind schemas, the intent graph, and the rule IR
//! with its **one** evaluator.
//!
//! The same evaluator checks a rule against intent (in a `policy`, before anything changes) and
//! against observed reality (in a `control`, continuously); only the [`eval::Env`] that answers
//! `intent(kind)` or `observe(kind, …)` differs. This crate does no I/O, reads no clock and
//! knows nothing of syntax trees, salsa, providers or SQL.

pub mod eval;
mod eval_builtins;
pub mod graph;
pub mod ir;
pub mod schema;
pub mod ty;
pub mod value;
mod vec_map;

pub use eval::{Env, EvalError, Evidence, Limit, Limits, Outcome, Verdict};
pub use graph::{
    Edge, EdgeReason, Instance, IntentGraph, Manage, Node, NodeAttr, ProviderInstance, SourceLoc,
};
pub use ir::{Builtin, CheckIr, CheckKind, CheckStmt, Ir, IrKind, Origin, Program, RuleIr, Severity};
pub use schema::{FieldRole, FieldSchema, KindCheck, KindSchema, Refers};
pub use ty::Ty;
pub use value::{ResourceValue, SecretPart, SecretValue, Unknown, Value};
pub use vec_map::VecMap;
