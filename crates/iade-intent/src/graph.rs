//! The intent graph: resources with fully evaluated desired attributes, each keeping where it
//! was declared, and the dependencies between them. Its JSON form is documented in
//! `docs/intent-graph.md` and versioned.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::value::Value;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IntentGraph {
    /// Version of this JSON shape.
    pub version: u32,
    /// Resources, sorted by id.
    pub nodes: Vec<Node>,
    /// Dependencies, sorted; `from` is applied before `to`.
    pub edges: Vec<Edge>,
}

/// A source location: file path, 1-based line and column, and the byte range.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceLoc {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub start: u32,
    pub end: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    /// `KIND.NAME`, unique and stable.
    pub id: String,
    pub kind: String,
    pub name: String,
    /// The provider type that serves the kind (`local`, `exec`, `postgres`).
    pub provider_type: Option<String>,
    /// The configured provider instance chosen with `provider = NAME`, if any.
    pub provider: Option<String>,
    /// Whether iade corrects the object or only reports its drift.
    pub manage: Manage,
    /// The identity fields and their values.
    pub identity: BTreeMap<String, Value>,
    /// Managed attributes (identity included): set in the source or by a kind default.
    pub attrs: BTreeMap<String, NodeAttr>,
    /// The resource declaration.
    pub declared: SourceLoc,
}

/// The `manage` meta-attribute: `enforce` corrects drift, `observe` only reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manage {
    #[default]
    Enforce,
    Observe,
}

impl Manage {
    pub fn as_str(self) -> &'static str {
        match self {
            Manage::Enforce => "enforce",
            Manage::Observe => "observe",
        }
    }

    pub fn parse(text: &str) -> Option<Manage> {
        match text {
            "enforce" => Some(Manage::Enforce),
            "observe" => Some(Manage::Observe),
            _ => None,
        }
    }
}

impl std::fmt::Display for SourceLoc {
    /// `path:line:column`, as editors and terminals link it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeAttr {
    pub value: Value,
    /// Where the value was written; `null` for a kind default.
    pub source: Option<SourceLoc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeReason {
    /// The dependent's attributes refer to the dependency.
    Reference,
    /// The dependent lists the dependency in `after`.
    After,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub reason: EdgeReason,
}

impl IntentGraph {
    pub const VERSION: u32 = 1;

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.binary_search_by(|n| n.id.as_str().cmp(id)).ok().map(|i| &self.nodes[i])
    }

    /// Graphviz DOT: one node per resource labelled with its id, one edge per dependency
    /// (dashed for `after`).
    pub fn to_dot(&self) -> String {
        let mut out =
            String::from("digraph intent {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
        for n in &self.nodes {
            let style = if n.manage == Manage::Observe { ", style=dashed" } else { "" };
            let _ = writeln!(out, "  {:?} [label={:?}{style}];", n.id, n.id);
        }
        for e in &self.edges {
            let style = match e.reason {
                EdgeReason::Reference => "",
                EdgeReason::After => " [style=dashed, label=\"after\"]",
            };
            let _ = writeln!(out, "  {:?} -> {:?}{style};", e.from, e.to);
        }
        out.push_str("}\n");
        out
    }
}
