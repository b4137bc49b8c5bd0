//! Tests of values, types and the evaluator, independent of any syntax.

mod eval;
mod vec_map;
