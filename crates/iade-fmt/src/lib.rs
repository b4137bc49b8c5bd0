//! The canonical layout of iade sources (`iade fmt`).
//!
//! Formatting is a pure function of the syntax tree plus the comment table: it is idempotent
//! (`format(format(x)) == format(x)`), keeps every comment, and preserves meaning (the tree of
//! the output equals the tree of the input, spans aside). It never formats a file with syntax
//! errors: guessing at broken code could lose text.

mod printer;

use iade_diagnostics::Diagnostic;
use iade_span::FileId;

/// Lines longer than this are broken where the layout allows (lists, records, calls, rules).
pub const MAX_WIDTH: usize = 100;

#[derive(Debug)]
pub enum FormatError {
    /// The source has syntax errors; nothing was formatted.
    Syntax(Vec<Diagnostic>),
}

/// Formats one source text.
pub fn format(text: &str) -> Result<String, FormatError> {
    let parse = iade_syntax::parse(FileId(0), text);
    if parse.has_errors() {
        return Err(FormatError::Syntax(parse.diagnostics));
    }
    Ok(printer::print(text, &parse))
}
