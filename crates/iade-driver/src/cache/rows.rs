//! The intent graph as a cache entry holds it: each node and edge a row (an array, without
//! the field names every map of the JSON form repeats) and each source location a row that
//! names its file by index into one table. Decoding the graph was most of a cached no-op's
//! own work; rows decode in about half the items.
//!
//! The rows are written from the graph by reference ([`GraphOut`]) and read into owned rows
//! ([`GraphIn`]) that move into the graph: both encode the same arrays. Every field of a
//! `Node`, `NodeAttr` and `SourceLoc` is destructured without `..`, so a field added to them
//! does not compile until it is carried here too.

use std::collections::HashMap;

use iade_intent::{
    Edge, EdgeReason, Instance, IntentGraph, Manage, Node, NodeAttr, ProviderInstance, SourceLoc, Value,
    VecMap,
};
use serde::{Deserialize, Serialize};

/// A source location: the file's index in the table, line, column, start and end.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Loc(u32, u32, u32, u32, u32);

/// The files that source locations name, each once.
#[derive(Default)]
struct Files<'a> {
    names: Vec<&'a str>,
    index: HashMap<&'a str, u32>,
}

impl<'a> Files<'a> {
    fn loc(&mut self, loc: &'a SourceLoc) -> Loc {
        let SourceLoc { file, line, column, start, end } = loc;
        let next = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        let i = *self.index.entry(&**file).or_insert_with(|| {
            self.names.push(&**file);
            next
        });
        Loc(i, *line, *column, *start, *end)
    }
}

#[derive(Serialize)]
struct NodeOut<'a>(
    &'a str,
    &'a str,
    &'a str,
    &'a Option<String>,
    &'a Option<String>,
    Manage,
    &'a VecMap<String, Value>,
    Vec<(&'a str, &'a Value, Option<Loc>)>,
    Loc,
    &'a Option<String>,
    &'a [String],
    bool,
);

#[derive(Deserialize)]
struct NodeIn(
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Manage,
    VecMap<String, Value>,
    Vec<(String, Value, Option<Loc>)>,
    Loc,
    Option<String>,
    Vec<String>,
    bool,
);

/// The graph to write.
#[derive(Serialize)]
pub(super) struct GraphOut<'a> {
    version: u32,
    files: Vec<&'a str>,
    nodes: Vec<NodeOut<'a>>,
    edges: Vec<(&'a str, &'a str, EdgeReason)>,
    instances: &'a [Instance],
    providers: &'a [ProviderInstance],
}

impl<'a> GraphOut<'a> {
    pub(super) fn new(graph: &'a IntentGraph) -> GraphOut<'a> {
        let IntentGraph { version, nodes, edges, instances, providers } = graph;
        let mut files = Files::default();
        let nodes = nodes
            .iter()
            .map(|n| {
                let Node {
                    id,
                    kind,
                    name,
                    provider_type,
                    provider,
                    manage,
                    identity,
                    attrs,
                    declared,
                    instance,
                    notify,
                    protect,
                } = n;
                let attrs = attrs
                    .iter()
                    .map(|(k, NodeAttr { value, source })| {
                        (k.as_str(), value, source.as_ref().map(|s| files.loc(s)))
                    })
                    .collect();
                NodeOut(
                    id,
                    kind,
                    name,
                    provider_type,
                    provider,
                    *manage,
                    identity,
                    attrs,
                    files.loc(declared),
                    instance,
                    notify,
                    *protect,
                )
            })
            .collect();
        let edges =
            edges.iter().map(|Edge { from, to, reason }| (from.as_str(), to.as_str(), *reason)).collect();
        GraphOut { version: *version, files: files.names, nodes, edges, instances, providers }
    }
}

/// The graph as read.
#[derive(Deserialize)]
pub(super) struct GraphIn {
    version: u32,
    files: Vec<String>,
    nodes: Vec<NodeIn>,
    edges: Vec<(String, String, EdgeReason)>,
    instances: Vec<Instance>,
    providers: Vec<ProviderInstance>,
}

impl GraphIn {
    /// The graph, or `None` if a location names a file the table does not have (a damaged
    /// entry: compile instead).
    pub(super) fn into_graph(self) -> Option<IntentGraph> {
        let GraphIn { version, files, nodes, edges, instances, providers } = self;
        // Each file's path once, shared by its locations.
        let files: Vec<std::sync::Arc<str>> = files.into_iter().map(std::sync::Arc::from).collect();
        let loc = |Loc(file, line, column, start, end): Loc| -> Option<SourceLoc> {
            let file = files.get(usize::try_from(file).ok()?)?.clone();
            Some(SourceLoc { file, line, column, start, end })
        };
        let mut out = Vec::with_capacity(nodes.len());
        for NodeIn(
            id,
            kind,
            name,
            provider_type,
            provider,
            manage,
            identity,
            attrs,
            declared,
            instance,
            notify,
            protect,
        ) in nodes
        {
            let mut rows = Vec::with_capacity(attrs.len());
            for (k, value, source) in attrs {
                let source = match source {
                    Some(s) => Some(loc(s)?),
                    None => None,
                };
                rows.push((k, NodeAttr { value, source }));
            }
            out.push(Node {
                id,
                kind,
                name,
                provider_type,
                provider,
                manage,
                identity,
                attrs: rows.into_iter().collect(),
                declared: loc(declared)?,
                instance,
                notify,
                protect,
            });
        }
        let edges = edges.into_iter().map(|(from, to, reason)| Edge { from, to, reason }).collect();
        Some(IntentGraph { version, nodes: out, edges, instances, providers })
    }
}
