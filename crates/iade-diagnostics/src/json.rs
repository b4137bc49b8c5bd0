//! The JSON form of diagnostics. Its schema is documented in `docs/diagnostics.md` and is
//! stable: fields may be added, never renamed or removed.

use serde::Serialize;

use crate::{Diagnostic, Sources};

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JsonPosition {
    /// One-based line.
    pub line: u32,
    /// One-based column, counted in Unicode scalar values.
    pub column: u32,
    /// Zero-based byte offset.
    pub offset: u32,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JsonLabel {
    pub file: String,
    pub start: JsonPosition,
    pub end: JsonPosition,
    pub message: String,
    pub primary: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JsonDiagnostic {
    pub code: String,
    pub severity: &'static str,
    pub message: String,
    pub labels: Vec<JsonLabel>,
    pub help: Option<String>,
    pub notes: Vec<String>,
    /// Machine-applicable edits; absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<JsonFix>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JsonFix {
    pub title: String,
    pub file: String,
    pub start: JsonPosition,
    pub end: JsonPosition,
    pub replacement: String,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JsonSummary {
    pub errors: usize,
    pub warnings: usize,
}

/// The document `--format json` prints.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JsonReport {
    pub version: u32,
    pub diagnostics: Vec<JsonDiagnostic>,
    pub summary: JsonSummary,
}

fn position(sources: &Sources, file: iade_span::FileId, offset: u32) -> JsonPosition {
    match sources.get(file) {
        Some(f) => {
            let lc = f.lines.line_col_chars(offset);
            JsonPosition { line: lc.line + 1, column: lc.col + 1, offset }
        }
        None => JsonPosition { line: 1, column: 1, offset },
    }
}

pub fn to_json(sources: &Sources, diags: &[Diagnostic]) -> JsonReport {
    let diagnostics = diags
        .iter()
        .map(|d| JsonDiagnostic {
            code: d.code.as_str().to_owned(),
            severity: d.severity.as_str(),
            message: d.message.clone(),
            labels: d
                .labels
                .iter()
                .map(|l| JsonLabel {
                    file: sources.get(l.file).map_or_else(String::new, |f| f.path.clone()),
                    start: position(sources, l.file, l.span.start),
                    end: position(sources, l.file, l.span.end),
                    message: l.message.clone(),
                    primary: l.primary,
                })
                .collect(),
            help: d.help.clone(),
            notes: d.notes.clone(),
            fixes: d
                .fixes
                .iter()
                .map(|f| JsonFix {
                    title: f.title.clone(),
                    file: sources.get(f.file).map_or_else(String::new, |s| s.path.clone()),
                    start: position(sources, f.file, f.span.start),
                    end: position(sources, f.file, f.span.end),
                    replacement: f.replacement.clone(),
                })
                .collect(),
        })
        .collect();
    JsonReport {
        version: 1,
        diagnostics,
        summary: JsonSummary {
            errors: diags.iter().filter(|d| d.is_error()).count(),
            warnings: diags.iter().filter(|d| !d.is_error()).count(),
        },
    }
}
