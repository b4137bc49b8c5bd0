//! The iade syntax layer: lexer, structure pass, parser, syntax tree and comment table.
//!
//! `parse` is total: every input, however malformed, yields a tree (with `Error` nodes where
//! it had to recover) and diagnostics with spans — never a panic, never unbounded recursion.
//! This crate knows nothing of salsa, tokio, SQL or LSP.

pub mod ast;
mod descent;
mod docs;
pub mod dump;
mod grammar;
mod parse;
pub mod structure;
pub mod template;
pub mod token;
mod validate;

pub use parse::{Parse, descent_coverage, parse, parse_by_grammar, parse_bytes, parse_with};
pub use structure::MAX_NESTING;
pub use token::{Comment, CommentKind};
