//! The JSON documents of `plan`, `converge` and `history`: versioned, documented in
//! `docs/engine.md`, and built here so every shell emits the same shape.

use std::io::Write;

use iade_engine::{ComplianceReport, Plan, RunReport};
use iade_journal::Store;
use serde::Serialize;

use crate::{Error, HistoryQuery, RunRecord};

/// The version of the documents' shape: fields may be added, never renamed or removed.
pub const VERSION: u32 = 2;

/// What a command produced, with the shape's version.
#[derive(Debug, Default, Serialize)]
pub struct Document<'a> {
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<&'a Plan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compliance: Option<&'a ComplianceReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<&'a RunReport>,
    /// A pass a watching engine ran for this `converge`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_by_watcher: Option<&'a RunRecord>,
}

impl<'a> Document<'a> {
    pub fn new() -> Document<'a> {
        Document { version: VERSION, ..Document::default() }
    }
}

/// Writes `{"version": …, "runs": [...]}` one run at a time, so memory stays bounded however
/// long the history. Returns how many runs were written.
pub fn write_history(store: &dyn Store, query: &HistoryQuery, out: &mut dyn Write) -> Result<usize, Error> {
    let io = |e: std::io::Error| Error::Io(format!("cannot write: {e}"));
    write!(out, "{{\n  \"version\": {VERSION},\n  \"runs\": [").map_err(io)?;
    let mut written = 0usize;
    let mut failed = None;
    crate::history(store, query, |r: RunRecord| {
        if failed.is_some() {
            return;
        }
        let text = serde_json::to_string_pretty(&r).unwrap_or_default().replace('\n', "\n    ");
        let sep = if written > 0 { "," } else { "" };
        match write!(out, "{sep}\n    {text}") {
            Ok(()) => written += 1,
            Err(e) => failed = Some(e),
        }
    })?;
    if let Some(e) = failed {
        return Err(io(e));
    }
    writeln!(out, "\n  ]\n}}").map_err(io)?;
    Ok(written)
}
