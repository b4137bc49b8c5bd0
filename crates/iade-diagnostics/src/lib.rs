//! Diagnostics as data: one `Diagnostic` value, rendered three ways (ariadne text, JSON, and
//! later LSP) so that every front end reports exactly the same thing.
//!
//! This crate owns the registry of diagnostic codes (`E0xxx`/`W0xxx`) and their explanations.
//! It must never decide *whether* something is wrong — only how a finding is described and shown.

pub mod codes;
mod json;
mod render;
mod sources;

pub use codes::{Code, CodeInfo, lookup, registry};
pub use json::{JsonDiagnostic, JsonLabel, JsonPosition, JsonReport, to_json};
pub use render::{RenderOptions, render_text};
pub use sources::{SourceFile, Sources};

use iade_span::{FileId, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A span in a file with a short message saying what is there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label {
    pub file: FileId,
    pub span: Span,
    pub message: String,
    /// The primary label says *where*; secondary labels give context.
    pub primary: bool,
}

/// One finding: what is wrong (message), where (labels), what to do (help).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    pub notes: Vec<String>,
    /// Edits that fix the problem, safe to apply without review (an editor's quick fix).
    pub fixes: Vec<Fix>,
}

/// A machine-applicable edit: replace `span` of `file` with `replacement`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fix {
    pub file: FileId,
    pub span: Span,
    pub replacement: String,
    /// What the edit does, as a quick fix is titled.
    pub title: String,
}

impl Diagnostic {
    /// A diagnostic with the severity its code implies.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            severity: code.severity(),
            message: message.into(),
            labels: Vec::new(),
            help: None,
            notes: Vec::new(),
            fixes: Vec::new(),
        }
    }

    pub fn fix(mut self, fix: Fix) -> Self {
        self.fixes.push(fix);
        self
    }

    pub fn primary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { file, span, message: message.into(), primary: true });
        self
    }

    pub fn secondary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { file, span, message: message.into(), primary: false });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The primary label, or the first one.
    pub fn primary_label(&self) -> Option<&Label> {
        self.labels.iter().find(|l| l.primary).or(self.labels.first())
    }

    /// Sort key: file, then position of the primary label, then code.
    pub fn sort_key(&self) -> (FileId, u32, u32, Code) {
        match self.primary_label() {
            Some(l) => (l.file, l.span.start, l.span.end, self.code),
            None => (FileId(0), 0, 0, self.code),
        }
    }
}

/// Sorts diagnostics into the order they are printed: by file, position, then code.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(Diagnostic::sort_key);
}
