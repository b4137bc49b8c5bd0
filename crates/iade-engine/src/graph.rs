//! The dependency structure of an intent graph, as a run walks it: each resource's direct
//! dependencies, its depth, and the closure of what a `--target` needs.

use std::collections::{BTreeSet, HashMap};

use iade_intent::IntentGraph;

/// Borrowed from the graph: a run of 10,000 resources held a copy of every id twice.
#[derive(Debug, Default)]
pub(crate) struct Deps<'g> {
    deps: HashMap<&'g str, Vec<&'g str>>,
    level: HashMap<&'g str, usize>,
}

impl<'g> Deps<'g> {
    pub fn new(graph: &'g IntentGraph) -> Deps<'g> {
        let mut deps: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in &graph.edges {
            deps.entry(e.to.as_str()).or_default().push(e.from.as_str());
        }
        let mut level = HashMap::new();
        for n in &graph.nodes {
            depth(&n.id, &deps, &mut level, 0);
        }
        Deps { deps, level }
    }

    /// The resources `id` depends on directly.
    pub fn direct(&self, id: &str) -> &[&'g str] {
        self.deps.get(id).map_or(&[], Vec::as_slice)
    }

    /// 0 for a resource without dependencies, else one more than its deepest dependency.
    pub fn level(&self, id: &str) -> usize {
        self.level.get(id).copied().unwrap_or(0)
    }

    pub fn deepest(&self) -> usize {
        self.level.values().copied().max().unwrap_or(0)
    }

    /// `ids` with every dependency before its dependents (by depth, then id).
    pub fn order(&self, ids: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        out.sort_by(|a, b| self.level(a).cmp(&self.level(b)).then_with(|| a.cmp(b)));
        out
    }

    /// A dependency of `id` (direct or not) that is in `failed`, if any.
    pub fn failed_dependency(&self, id: &str, failed: &BTreeSet<String>) -> Option<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = vec![id];
        while let Some(next) = stack.pop() {
            for d in self.direct(next) {
                if failed.contains(*d) {
                    return Some(d.to_string());
                }
                if seen.insert(*d) {
                    stack.push(d);
                }
            }
        }
        None
    }
}

fn depth<'g>(
    id: &'g str,
    deps: &HashMap<&'g str, Vec<&'g str>>,
    level: &mut HashMap<&'g str, usize>,
    guard: usize,
) -> usize {
    if let Some(l) = level.get(id) {
        return *l;
    }
    // The compiler rejects cycles; the guard only keeps a malformed graph from looping.
    let l = if guard > 10_000 {
        0
    } else {
        deps.get(id)
            .map_or(0, |ds| ds.iter().map(|d| depth(d, deps, level, guard + 1) + 1).max().unwrap_or(0))
    };
    level.insert(id, l);
    l
}

/// `targets` and everything they depend on, directly or not: what `--target` runs. A target
/// names a resource (`file.config`) or a component instance (`vhost.api`, all its members).
/// Targets that name nothing in the graph are returned in the error.
pub fn dependency_closure(graph: &IntentGraph, targets: &[String]) -> Result<BTreeSet<String>, Vec<String>> {
    let deps = Deps::new(graph);
    let mut stack: Vec<String> = Vec::new();
    let mut missing = Vec::new();
    for t in targets {
        let prefix = format!("{t}/");
        let found: Vec<String> = graph
            .nodes
            .iter()
            .filter(|n| &n.id == t || n.id.starts_with(&prefix))
            .map(|n| n.id.clone())
            .collect();
        if found.is_empty() {
            missing.push(t.clone());
        }
        stack.extend(found);
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut out = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if out.insert(id.clone()) {
            stack.extend(deps.direct(&id).iter().map(|d| d.to_string()));
        }
    }
    Ok(out)
}
