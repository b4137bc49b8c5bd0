//! The rule IR: expressions with their names resolved, and the statements of policies and
//! controls. The compiler lowers every expression of a stack to it; [`crate::eval`] runs it.
//!
//! Spans in the IR are relative to the item that declared the code (see [`Origin`]), so
//! moving an item in its file leaves its IR equal and nothing downstream is recomputed.

use std::sync::Arc;

use iade_span::{FileId, Span};

use crate::ty::Ty;
use crate::value::Value;

/// Where a piece of IR was declared: a file and the name of the top-level item in it. Spans
/// inside are relative to that item's start.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    pub file: FileId,
    pub item: Arc<str>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Ir {
    pub kind: IrKind,
    pub span: Span,
    /// The source text of the expression, kept for evidence in verdicts (`f.mode` is
    /// `0o666`); only set inside rules, policies and controls.
    pub text: Option<Arc<str>>,
}

impl Ir {
    pub fn new(kind: IrKind, span: Span) -> Ir {
        Ir { kind, span, text: None }
    }

    pub fn lit(value: Value, span: Span) -> Ir {
        Ir::new(IrKind::Lit(value), span)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UnOp {
    Neg,
    Not,
}

/// The operators of the language, as the IR carries them. They mirror the syntax tree's own
/// on purpose: this crate does not depend on the syntax layer (the engine evaluates IR with
/// no parser in sight), and the compiler maps one to the other in one function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    BitOr,
    BitXor,
    BitAnd,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::BitAnd => "&",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::In)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IrKind {
    Lit(Value),
    /// A local slot: a rule parameter, a `for` binding, a body `let`.
    Local(u32),
    /// A `let` or `param`, by its qualified name (the environment knows how to evaluate it).
    Global(Arc<str>),
    /// A declared resource, by id (`file.config`).
    Resource(Arc<str>),
    /// `file["log_access"]`: a resource of a kind by its (possibly generated) name; inside a
    /// component (`relative`), a member of the instance being evaluated.
    ResourceByName {
        kind: Arc<str>,
        name: Box<Ir>,
        relative: bool,
    },
    /// A member of the component instance being evaluated, by its id within the instance
    /// (`file.conf` in instance `vhost.api` is `vhost.api/file.conf`).
    Sibling(Arc<str>),
    /// `[value for x in iter if cond]`; `key` is bound for `for k, v in` over a map.
    Comprehension(Box<ComprehensionIr>),
    List(Vec<Ir>),
    Record(Vec<(String, Ir)>),
    /// String interpolation: the parts are concatenated.
    Interp(Vec<Ir>),
    Unary(UnOp, Box<Ir>),
    Binary(BinOp, Box<Ir>, Box<Ir>),
    Member(Box<Ir>, Arc<str>),
    Index(Box<Ir>, Box<Ir>),
    If(Box<Ir>, Box<Ir>, Box<Ir>),
    Call(Builtin, Vec<Ir>),
    /// A call of a rule by its qualified name: true when the rule holds. Boxed: rare, and
    /// the largest variant otherwise.
    RuleCall(Box<RuleCallIr>),
    /// `intent(kind)` or `observe(kind, under = …)`: objects the environment supplies.
    Objects {
        source: ObjectSource,
        kind: Arc<str>,
        under: Option<Box<Ir>>,
    },
    /// Code that did not compile; its diagnostic was reported. Evaluates to unknown.
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RuleCallIr {
    /// The rule's qualified name.
    pub name: Arc<str>,
    pub args: Vec<Ir>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ComprehensionIr {
    pub key: Option<u32>,
    pub slot: u32,
    pub iter: Ir,
    pub cond: Option<Ir>,
    pub value: Ir,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ObjectSource {
    Intent,
    Observe,
}

macro_rules! builtins {
    ($($variant:ident = $name:literal ($min:literal..=$max:literal), $sig:literal, $doc:literal;)*) => {
        /// Builtin functions. Each checks its own arguments and reports a plain message; the
        /// evaluator attaches the span of the call.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum Builtin { $($variant,)* }

        impl Builtin {
            pub const ALL: &'static [Builtin] = &[$(Builtin::$variant,)*];

            pub fn name(self) -> &'static str {
                match self { $(Builtin::$variant => $name,)* }
            }

            /// How many positional arguments it takes.
            pub fn arity(self) -> (usize, usize) {
                match self { $(Builtin::$variant => ($min, $max),)* }
            }

            /// Its signature, as hover shows it.
            pub fn signature(self) -> &'static str {
                match self { $(Builtin::$variant => $sig,)* }
            }

            pub fn doc(self) -> &'static str {
                match self { $(Builtin::$variant => $doc,)* }
            }

            pub fn from_name(name: &str) -> Option<Builtin> {
                match name { $($name => Some(Builtin::$variant),)* _ => None }
            }
        }
    };
}

builtins! {
    Len = "len" (1..=1), "len(x: string | list | map) -> int", "The length of a string (in characters), list or map.";
    Upper = "upper" (1..=1), "upper(s: string) -> string", "The string in upper case.";
    Lower = "lower" (1..=1), "lower(s: string) -> string", "The string in lower case.";
    Trim = "trim" (1..=1), "trim(s: string) -> string", "The string without leading and trailing whitespace.";
    Join = "join" (2..=2), "join(items: list(string), separator: string) -> string", "The strings of a list joined with a separator.";
    Split = "split" (2..=2), "split(s: string, separator: string) -> list(string)", "The parts of a string between separators.";
    Replace = "replace" (3..=3), "replace(s: string, from: string, to: string) -> string", "The string with every `from` replaced by `to`.";
    Contains = "contains" (2..=2), "contains(haystack: string | list | map, needle) -> bool", "Whether a string contains a substring, a list an element, or a map a key.";
    StartsWith = "starts_with" (2..=2), "starts_with(s: string, prefix: string) -> bool", "Whether a string starts with a prefix.";
    EndsWith = "ends_with" (2..=2), "ends_with(s: string, suffix: string) -> bool", "Whether a string ends with a suffix.";
    Matches = "matches" (2..=2), "matches(s: string, pattern: string) -> bool", "Whether a regular expression (Rust `regex` syntax) matches somewhere in the string; anchor it with `^` and `$`.";
    Keys = "keys" (1..=1), "keys(m: map) -> list(string)", "The keys of a map, in sorted order.";
    Values = "values" (1..=1), "values(m: map) -> list", "The values of a map, in the order of their keys.";
    Range = "range" (1..=2), "range(end: int) / range(start: int, end: int) -> list(int)", "The integers from start (default 0) up to but not including end; at most 100000.";
    Concat = "concat" (1..=8), "concat(lists: list...) -> list", "The lists joined into one.";
    Basename = "basename" (1..=1), "basename(p: path) -> string", "The last component of a path.";
    Dirname = "dirname" (1..=1), "dirname(p: path) -> path", "The path without its last component.";
    JoinPath = "join_path" (2..=8), "join_path(parts: path...) -> path", "The paths joined with `/`; an absolute part restarts the path.";
    ToString = "to_string" (1..=1), "to_string(x) -> string", "The value as text (modes in octal).";
    Secret = "secret" (1..=1), "secret(name: string) -> secret", "A secret supplied to the run under this name; only the engine resolves it.";
    Include = "include" (1..=1), "include(path: string) -> string", "The contents of a file, byte for byte, relative to the file that includes it.";
    Template = "template" (2..=2), "template(path: string, vars: record) -> string", "A file relative to the including one, with `${…}` expressions over `vars` and the builtins filled in (`$${` is a literal `${`).";
    Get = "get" (3..=3), "get(m: map, key: string, default) -> value", "The value of `key` in a map, or `default` when the map lacks it.";
    Intent = "intent" (1..=1), "intent(kind) -> list(kind)", "The intended resources of a kind (in policies).";
    Observe = "observe" (1..=1), "observe(kind, under = path) -> list(kind)", "The observed objects of a kind, including unmanaged ones (in controls).";
}

/// A rule: a typed predicate with the message shown when it fails.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RuleIr {
    /// Qualified name, the key of `RuleCall`.
    pub name: Arc<str>,
    pub params: Vec<(String, Ty)>,
    pub body: Ir,
    pub message: Option<Ir>,
    /// Local slots the body needs (parameters first).
    pub slots: u32,
    pub origin: Origin,
    /// The span of the rule's name, where a verdict points for "the rule".
    pub name_span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CheckKind {
    Policy,
    Control,
}

/// How much a failing policy or control matters. A policy is `deny` (its failure stops the
/// run) or `warn`; a control is `low`, `medium`, `high` or `critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Deny,
    Warn,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const POLICY: &[Severity] = &[Severity::Deny, Severity::Warn];
    pub const CONTROL: &[Severity] = &[Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Deny => "deny",
            Severity::Warn => "warn",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        [Self::POLICY, Self::CONTROL].concat().into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `policy` or a `control`, lowered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CheckIr {
    pub kind: CheckKind,
    /// The policy's name or the control's id.
    pub name: String,
    /// `deny`/`warn` for a policy; `low`/`medium`/`high`/`critical` for a control.
    pub severity: Severity,
    pub title: Option<String>,
    pub body: Vec<CheckStmt>,
    pub slots: u32,
    pub origin: Origin,
    pub name_span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CheckStmt {
    Require {
        cond: Ir,
        message: Option<Ir>,
        span: Span,
    },
    /// `for x in …` (`key` set for `for k, v in map`).
    For {
        key: Option<u32>,
        slot: u32,
        iter: Ir,
        body: Vec<CheckStmt>,
    },
    If {
        cond: Ir,
        then: Vec<CheckStmt>,
        otherwise: Vec<CheckStmt>,
    },
    Let {
        slot: u32,
        value: Ir,
    },
}

/// Everything the engine needs to evaluate a stack's controls without the compiler: the
/// controls, the rules and globals they use, and where each control and rule is for locations.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Program {
    pub rules: std::collections::BTreeMap<String, Arc<RuleIr>>,
    pub globals: std::collections::BTreeMap<String, crate::Value>,
    pub controls: Vec<Arc<CheckIr>>,
    /// The file path and offset of each control and rule: where a finding's `require` is.
    pub items: std::collections::BTreeMap<Origin, (Arc<str>, u32)>,
    pub lines: std::collections::BTreeMap<FileId, Arc<iade_span::LineIndex>>,
    /// Each kind's fields and their roles, for the values of observed objects.
    pub kinds: std::collections::BTreeMap<String, Arc<Vec<(String, crate::FieldRole)>>>,
    /// The provider type that serves each kind.
    pub providers: std::collections::BTreeMap<String, String>,
    /// Failing findings to report as waived, until a date.
    pub waivers: Vec<Waiver>,
}

/// `waive control NAME for SUBJECT until "DATE" reason "…"`: a failing finding of that control
/// on that subject is waived until the end of that day (UTC); the engine judges the date.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Waiver {
    pub control: String,
    /// As findings name it: `file[/srv/app/legacy.sh]` or `file.config`.
    pub subject: String,
    /// `YYYY-MM-DD`.
    pub until: String,
    pub reason: String,
}

impl Program {
    /// Where an item-relative span is: file, 1-based line and column, and byte range.
    pub fn location(&self, origin: &Origin, span: Span) -> Option<crate::SourceLoc> {
        let (path, offset) = self.items.get(origin)?;
        let lines = self.lines.get(&origin.file)?;
        let lc = lines.line_col(span.start + offset);
        Some(crate::SourceLoc {
            file: path.clone(),
            line: lc.line + 1,
            column: lc.col + 1,
            start: span.start + offset,
            end: span.end + offset,
        })
    }
}
