use std::sync::Arc;

use iade_intent::eval::Evaluator;
use iade_intent::ir::{BinOp, Ir, IrKind, ObjectSource, Origin, RuleIr};
use iade_intent::{Env, Value};
use iade_span::{FileId, Span};

struct NoEnv;

impl Env for NoEnv {
    fn global(&self, _: &str) -> Value {
        Value::Null
    }
    fn resource(&self, _: &str) -> Option<Value> {
        None
    }
    fn resource_by_name(&self, _: &str, _: &str) -> Option<Value> {
        None
    }
    fn rule(&self, _: &str) -> Option<Arc<RuleIr>> {
        None
    }
    fn objects(&self, _: ObjectSource, _: &str, _: Option<&str>) -> Result<Vec<Value>, String> {
        Ok(Vec::new())
    }
    fn include(&self, _: &Origin, _: &str) -> Result<Value, String> {
        Err("no files".into())
    }
}

fn origin() -> Origin {
    Origin { file: FileId(0), item: Arc::from("test") }
}

fn lit(v: Value) -> Ir {
    Ir::lit(v, Span::default())
}

fn bin(op: BinOp, a: Ir, b: Ir) -> Ir {
    Ir::new(IrKind::Binary(op, Box::new(a), Box::new(b)), Span::default())
}

fn eval(ir: &Ir) -> Value {
    Evaluator::new(&NoEnv, origin(), 0).eval(ir).expect("evaluates")
}

#[test]
fn bit_operations_on_a_mode_stay_a_mode() {
    let v = eval(&bin(BinOp::BitAnd, lit(Value::Mode(0o666)), lit(Value::Int(0o002))));
    assert_eq!(v, Value::Mode(0o002));
    assert_eq!(v.to_string(), "0o002");
}

#[test]
fn unknown_propagates_but_a_deciding_side_wins() {
    let u = Value::unknown("unmanaged");
    assert!(eval(&bin(BinOp::Eq, lit(u.clone()), lit(Value::Int(1)))).is_unknown());
    assert_eq!(eval(&bin(BinOp::And, lit(u.clone()), lit(Value::Bool(false)))), Value::Bool(false));
    assert_eq!(eval(&bin(BinOp::Or, lit(u.clone()), lit(Value::Bool(true)))), Value::Bool(true));
    assert!(eval(&bin(BinOp::And, lit(u), lit(Value::Bool(true)))).is_unknown());
}

#[test]
fn division_by_zero_is_an_error_not_a_panic() {
    let e =
        Evaluator::new(&NoEnv, origin(), 0).eval(&bin(BinOp::Div, lit(Value::Int(1)), lit(Value::Int(0))));
    assert!(e.is_err());
    let e = Evaluator::new(&NoEnv, origin(), 0).eval(&bin(
        BinOp::Add,
        lit(Value::Int(i64::MAX)),
        lit(Value::Int(1)),
    ));
    assert!(e.is_err());
}
