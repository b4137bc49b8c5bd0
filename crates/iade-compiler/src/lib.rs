//! The incremental compiler: one salsa database from `.iade` sources to a checked, evaluated
//! intent graph, with policies checked on it.
//!
//! Inputs are source files (text set by the driver), params, and files read on demand
//! (`use "./x.iade"`, `include("…")`) through a loader the driver supplies. Derived queries
//! parse, resolve names, lower to the rule IR, evaluate, build the graph and check policies;
//! each returns its diagnostics as values, so the CLI and the language server report the same.
//!
//! **This crate does no I/O of its own** (no filesystem, environment or clock): the driver sets
//! inputs and answers loads. Queries work on items (top-level declarations) with spans relative
//! to the item, so an edit re-runs only what depends on the items it changed.

mod db;
mod diag;
mod eval;
mod graph;
mod items;
mod lower;
mod policy;
mod schedule;
mod scope;
mod semantics;
mod stdlib;
mod suggest;
mod template;
mod testing;

pub use db::{Database, Db, Options};
pub use diag::Diag;
pub use eval::{EvaluatedResource, eval_global, eval_resources};
pub use graph::{StackResources, Summary, stack_resources};
pub use items::{Item, Module, SourceFile, Stack, item_tree, parse_file};
pub use lower::{Lowered, LoweredKind, STACK_SETTINGS, StackSettings, lower_item};
pub use policy::check_policy;
/// A query of a database handle unwound because the database is being edited.
pub use salsa::Cancelled;
pub use semantics::{ItemCategory, ItemInfo, Member, MissingRequired, Place};
pub use stdlib::EMBEDDED as EMBEDDED_STDLIB;
pub use suggest::closest;
pub use testing::{ExpectResult, TestCase, test_cases};
