//! The syntax tree.
//!
//! Spans inside an item are **relative to the item's start** (`Item::offset`), so an edit that
//! only moves an item (text inserted above it) leaves its tree equal, and an incremental
//! compiler keyed on item trees need not redo any work for it. Add `Item::offset` to get an
//! absolute position. Every node has a span; recovered regions are `Error` nodes.

use iade_span::Span;

/// A parsed file: its top-level items in source order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct SourceFile {
    pub items: Vec<Item>,
}

/// A top-level item and where it starts in the file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Item {
    /// Absolute byte offset of the item's first token.
    pub offset: u32,
    /// The item; all spans within are relative to `offset`. Shared, so that a compiler can
    /// hand out an item's tree without copying it.
    pub stmt: std::sync::Arc<Stmt>,
}

impl Item {
    /// The item's absolute span.
    pub fn span(&self) -> Span {
        self.stmt.span.absolute_from(self.offset)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// An item, block entry or field declaration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
    /// The text of the `##` doc comments directly above, without the `##` markers.
    pub doc: Option<Box<str>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StmtKind {
    Use(UseDecl),
    // The larger declarations are boxed so a statement stays small: the parser moves
    // statements by value through its combinators, and their size is its cost.
    Param(Box<ParamDecl>),
    Let(Box<LetDecl>),
    Resource(ResourceDecl),
    Provider(ProviderDecl),
    Stack(StackDecl),
    /// `waive control NAME for SUBJECT until "DATE" reason "TEXT"`.
    Waive(Box<WaiveDecl>),
    /// `test "name" { … }`, in a `*_test.iade` file.
    Test(TestDecl),
    /// `with param NAME = EXPR`, in a test.
    TestParam(Name, Expr),
    /// `observed KIND { … }`: an object a test's controls observe.
    Observed(ResourceDecl),
    /// `expect …`, in a test.
    Expect(Expect),
    Component(Box<ComponentDecl>),
    Kind(KindDecl),
    Field(Box<FieldDecl>),
    Rule(Box<RuleDecl>),
    Policy(PolicyDecl),
    Control(ControlDecl),
    For(Box<ForStmt>),
    If(Box<IfStmt>),
    Attr(Attr),
    Require(Require),
    /// A region that did not parse; its diagnostic was already reported.
    Error,
}

impl StmtKind {
    /// How the construct is named in messages.
    pub fn describe(&self) -> &'static str {
        match self {
            StmtKind::Use(_) => "`use`",
            StmtKind::Param(_) => "`param`",
            StmtKind::Let(_) => "`let`",
            StmtKind::Resource(_) => "a resource declaration",
            StmtKind::Provider(_) => "a `provider` block",
            StmtKind::Stack(_) => "a `stack` block",
            StmtKind::Waive(_) => "a `waive`",
            StmtKind::Test(_) => "a `test`",
            StmtKind::TestParam(..) => "`with param`",
            StmtKind::Observed(_) => "an `observed` object",
            StmtKind::Expect(_) => "an `expect`",
            StmtKind::Component(_) => "a `component`",
            StmtKind::Kind(_) => "a `kind` declaration",
            StmtKind::Field(_) => "a field declaration",
            StmtKind::Rule(_) => "a `rule`",
            StmtKind::Policy(_) => "a `policy`",
            StmtKind::Control(_) => "a `control`",
            StmtKind::For(_) => "`for`",
            StmtKind::If(_) => "`if`",
            StmtKind::Attr(_) => "an attribute",
            StmtKind::Require(_) => "`require`",
            StmtKind::Error => "an invalid statement",
        }
    }
}

/// `{ … }` with its entries; the span covers both braces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UseDecl {
    pub path: UsePath,
    /// `use std.fs as fs`
    pub alias: Option<Name>,
    /// `use std.fs.{file, directory as dir}`
    pub names: Option<Vec<UseName>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UsePath {
    /// `std.fs`
    Module(Vec<Name>),
    /// `"./modules/web.iade"`
    File(StrLit),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UseName {
    pub name: Name,
    pub alias: Option<Name>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParamDecl {
    pub name: Name,
    pub ty: Type,
    pub default: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LetDecl {
    pub name: Name,
    pub ty: Option<Type>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceDecl {
    /// `file`, or module-qualified `pg.role`.
    pub kind: Vec<Name>,
    pub name: ResourceName,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResourceName {
    Ident(Name),
    Str(StrLit),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderDecl {
    pub provider_type: Name,
    pub name: Name,
    pub body: Block,
}

/// `stack webapp { prune = true }`: the stack's name and settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TestDecl {
    pub name: StrLit,
    pub body: Block,
}

/// What a test expects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    /// `expect control NAME fails` (`policy` when `control` is false); the outcome is `passes`,
    /// `fails` or `unknown`.
    Check { control: bool, name: Name, outcome: Name },
    /// `expect snapshot "path"`.
    Snapshot(StrLit),
    /// `expect EXPR`, over the intent.
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WaiveDecl {
    pub control: Name,
    /// `file` in `file[/srv/x]`, or the resource id `file.config` written as a path.
    pub subject: Vec<Name>,
    /// The text between the brackets of `file[/srv/x]`, as a span of the item.
    pub object: Option<Span>,
    pub until: StrLit,
    pub reason: StrLit,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StackDecl {
    pub name: Name,
    pub body: Block,
}

/// `component vhost(port: int, root: path = "/srv/www") { … }`: a parameterized group of
/// resources, instantiated like a resource (`vhost api { port = 8080 }`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ComponentDecl {
    pub name: Name,
    pub params: Vec<ComponentParam>,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ComponentParam {
    pub name: Name,
    pub ty: Type,
    pub default: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KindDecl {
    pub name: Name,
    pub body: Block,
}

/// `identity path: path`, `desired mode: mode = 0o644 where mode <= 0o7777`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldDecl {
    pub role: Name,
    pub name: Name,
    pub ty: Type,
    /// `refers user.name`: the kind and identity field a value of this field names.
    pub refers: Option<Vec<Name>>,
    pub default: Option<Expr>,
    pub constraint: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RuleDecl {
    pub name: Name,
    pub params: Vec<RuleParam>,
    pub body: Expr,
    pub message: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RuleParam {
    pub name: Name,
    pub ty: Type,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyDecl {
    pub name: Name,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ControlDecl {
    pub id: ControlId,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ControlId {
    Ident(Name),
    Str(StrLit),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ForStmt {
    /// One binding (`for x in`) or two (`for k, v in`).
    pub bindings: Vec<Name>,
    pub iter: Expr,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IfStmt {
    pub cond: Expr,
    pub then: Block,
    pub otherwise: Option<Else>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Else {
    Block(Block),
    /// `else if …`; the statement is always an `If`.
    If(Box<Stmt>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attr {
    pub key: Key,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Ident(Name),
    Str(StrLit),
}

impl Key {
    pub fn span(&self) -> Span {
        match self {
            Key::Ident(n) => n.span,
            Key::Str(s) => s.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Require {
    pub cond: Expr,
    /// Boxed: a statement is as large as its largest kind, and most are attributes.
    pub message: Option<Box<Expr>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Type {
    pub kind: TypeKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TypeKind {
    /// `int`, `file`, `pg.role`
    Named(Vec<Name>),
    /// `list(int)`, `map(string)`, `enum(present, absent)`
    App(Name, Vec<Type>),
    /// `{ port: int, tier: string }`
    Record(Vec<(Key, Type)>),
    /// `T?`
    Optional(Box<Type>),
    /// `"dev" | "prod"`
    Union(Vec<Type>),
    /// A string literal type.
    Str(StrLit),
    /// An integer literal type.
    Int(IntLit),
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExprKind {
    Int(IntLit),
    Bool(bool),
    Null,
    Str(StrLit),
    Name(Name),
    List(Vec<Expr>),
    Record(Vec<RecordEntry>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Arg>),
    Member(Box<Expr>, Name),
    Index(Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Paren(Box<Expr>),
    /// `[expr for x in xs if cond]`
    Comprehension(Box<Comprehension>),
    Error,
}

/// `[value for x in iter if cond]`, or `for k, v in` over a map.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Comprehension {
    pub value: Expr,
    pub bindings: Vec<Name>,
    pub iter: Expr,
    pub cond: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IntLit {
    pub value: i64,
    /// The literal as written (`0o755`, `1_000`): the formatter keeps it.
    pub raw: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StrLit {
    pub parts: Vec<StrPart>,
    pub multiline: bool,
    pub span: Span,
}

impl StrLit {
    /// The cooked value when the string has no interpolation.
    pub fn as_plain(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                StrPart::Text { raw, .. } => out.push_str(&crate::token::cook(raw)),
                StrPart::Interp(_) => return None,
            }
        }
        Some(out)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StrPart {
    /// Text as written in the source, escapes included; see `token::cook`.
    Text {
        raw: String,
        span: Span,
    },
    Interp(Expr),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordEntry {
    pub key: Key,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Arg {
    pub name: Option<Name>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

    /// Binding strength; higher binds tighter. Comparisons share one level.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::In => 4,
            BinOp::BitOr => 5,
            BinOp::BitXor => 6,
            BinOp::BitAnd => 7,
            BinOp::Add | BinOp::Sub => 8,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 9,
        }
    }
}

impl UnOp {
    pub fn as_str(self) -> &'static str {
        match self {
            UnOp::Neg => "-",
            UnOp::Not => "not",
        }
    }
}
