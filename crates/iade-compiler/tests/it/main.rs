//! Tests of the compiler through its public database API.

mod golden;
mod incremental;
mod language;
mod props;
mod support;
