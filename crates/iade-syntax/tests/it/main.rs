//! Integration tests of the syntax layer: goldens over `tests/syntax`, robustness properties.

mod descent;
mod golden;
mod lex_parallel;
mod props;
mod rng;
mod structure;
