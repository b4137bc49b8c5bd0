//! The intent graph: resources with fully evaluated desired attributes, each keeping where it
//! was declared, and the dependencies between them. Its JSON form is documented in
//! `docs/intent-graph.md` and versioned.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::value::Value;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentGraph {
    /// Version of this JSON shape.
    pub version: u32,
    /// Resources, sorted by id.
    pub nodes: Vec<Node>,
    /// Dependencies, sorted; `from` is applied before `to`.
    pub edges: Vec<Edge>,
    /// Component instances, sorted by id; their members are nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
    /// Configured provider instances (`provider postgres main { url = … }`), sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderInstance>,
}

/// `provider TYPE NAME { … }`: an instance of a provider type and its evaluated settings
/// (secrets stay secret: only the provider resolves them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInstance {
    pub name: String,
    pub provider_type: String,
    pub settings: std::collections::BTreeMap<String, crate::Value>,
}

/// A component instance: `vhost.api`, whose members have ids `vhost.api/…`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub component: String,
    pub name: String,
    /// The instance it is a member of, when nested.
    pub parent: Option<String>,
    /// Its resources, nested instances' included, sorted.
    pub members: Vec<String>,
    /// The instance declaration.
    pub declared: SourceLoc,
}

/// A source location: file path, 1-based line and column, and the byte range.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceLoc {
    /// Shared by every location in the file: a graph of 10,000 resources holds 50,000.
    pub file: std::sync::Arc<str>,
    pub line: u32,
    pub column: u32,
    pub start: u32,
    pub end: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    pub identity: crate::VecMap<String, Value>,
    /// Managed attributes (identity included): set in the source or by a kind default.
    pub attrs: crate::VecMap<String, NodeAttr>,
    /// The resource declaration.
    pub declared: SourceLoc,
    /// The innermost component instance it is a member of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Resources refreshed when a step of this one changes the environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    /// Never deleted: a plan that would delete it fails instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protect: bool,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAttr {
    pub value: Value,
    /// Where the value was written; `null` for a kind default.
    pub source: Option<SourceLoc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeReason {
    /// The dependent's attributes refer to the dependency.
    Reference,
    /// The dependent lists the dependency in `after`.
    After,
    /// The dependency notifies the dependent (`notify`), which implies `after`.
    Notify,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// (dashed for `after`, bold for `notify`); members of a component instance are drawn
    /// inside a box labelled with the instance's id.
    pub fn to_dot(&self) -> String {
        let mut out =
            String::from("digraph intent {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
        let node_line = |out: &mut String, n: &Node, indent: &str| {
            let style = if n.manage == Manage::Observe { ", style=dashed" } else { "" };
            let _ = writeln!(out, "{indent}{:?} [label={:?}{style}];", n.id, n.id);
        };
        for n in self.nodes.iter().filter(|n| n.instance.is_none()) {
            node_line(&mut out, n, "  ");
        }
        // Top-level instances first; nested ones inside their parent's cluster.
        fn cluster(g: &IntentGraph, inst: &Instance, depth: usize, out: &mut String) {
            let pad = "  ".repeat(depth + 1);
            let _ = writeln!(out, "{pad}subgraph {:?} {{", format!("cluster_{}", inst.id));
            let _ = writeln!(out, "{pad}  label={:?};", format!("{} ({})", inst.id, inst.component));
            for n in g.nodes.iter().filter(|n| n.instance.as_deref() == Some(inst.id.as_str())) {
                let style = if n.manage == Manage::Observe { ", style=dashed" } else { "" };
                let _ = writeln!(out, "{pad}  {:?} [label={:?}{style}];", n.id, n.id);
            }
            for child in g.instances.iter().filter(|c| c.parent.as_deref() == Some(inst.id.as_str())) {
                cluster(g, child, depth + 1, out);
            }
            let _ = writeln!(out, "{pad}}}");
        }
        for inst in self.instances.iter().filter(|i| i.parent.is_none()) {
            cluster(self, inst, 0, &mut out);
        }
        for e in &self.edges {
            let style = match e.reason {
                EdgeReason::Reference => "",
                EdgeReason::After => " [style=dashed, label=\"after\"]",
                EdgeReason::Notify => " [style=bold, label=\"notify\"]",
            };
            let _ = writeln!(out, "  {:?} -> {:?}{style};", e.from, e.to);
        }
        out.push_str("}\n");
        out
    }
}
