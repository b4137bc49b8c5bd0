//! Diagnostics as the queries produce them: spans relative to an item, so that a result does
//! not change when only the item's position in its file does. [`crate::Database`] converts
//! them to absolute [`iade_diagnostics::Diagnostic`]s at the end.

use iade_diagnostics::Code;
use iade_intent::Origin;
use iade_span::Span;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diag {
    pub code: Code,
    pub message: String,
    pub labels: Vec<DiagLabel>,
    pub help: Option<String>,
    pub notes: Vec<String>,
    /// A severity other than the code's default (a `warn` policy's violation).
    pub warning: bool,
    /// Machine-applicable edits, item-relative like the labels.
    pub fixes: Vec<DiagFix>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiagFix {
    pub origin: Origin,
    pub span: Span,
    pub replacement: String,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiagLabel {
    pub origin: Origin,
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

impl Diag {
    pub fn new(code: Code, message: impl Into<String>) -> Diag {
        Diag {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            notes: Vec::new(),
            warning: false,
            fixes: Vec::new(),
        }
    }

    pub fn fix(
        mut self,
        origin: &Origin,
        span: Span,
        replacement: impl Into<String>,
        title: impl Into<String>,
    ) -> Diag {
        self.fixes.push(DiagFix {
            origin: origin.clone(),
            span,
            replacement: replacement.into(),
            title: title.into(),
        });
        self
    }

    pub fn primary(mut self, origin: &Origin, span: Span, message: impl Into<String>) -> Diag {
        self.labels.push(DiagLabel { origin: origin.clone(), span, message: message.into(), primary: true });
        self
    }

    pub fn secondary(mut self, origin: &Origin, span: Span, message: impl Into<String>) -> Diag {
        self.labels.push(DiagLabel { origin: origin.clone(), span, message: message.into(), primary: false });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Diag {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diag {
        self.notes.push(note.into());
        self
    }
}
