//! The chumsky grammar of one top-level item. Spans it produces are relative to the item.
#![expect(
    clippy::clone_on_copy,
    reason = "combinators are cloned uniformly; which ones happen to be Copy is an accident of chumsky"
)]

use chumsky::error::{EmptyErr, LabelError};
use chumsky::input::ValueInput;
use chumsky::prelude::*;
use iade_span::Span;

use crate::ast::*;
use crate::token::{Token, parse_int};

/// The detailed error type, for reporting; the grammar also runs with chumsky's `EmptyErr`,
/// which tracks nothing and makes the common, error-free parse several times faster.
pub(crate) type RichErr<'t, 's> = Rich<'t, Token<'s>, SimpleSpan>;

/// Errors the grammar raises itself, beyond chumsky's expected/found errors.
pub(crate) trait GrammarError {
    fn custom(span: SimpleSpan, marker: &'static str) -> Self;
}

impl GrammarError for EmptyErr {
    fn custom(_: SimpleSpan, _: &'static str) -> Self {
        EmptyErr::default()
    }
}

impl GrammarError for RichErr<'_, '_> {
    fn custom(span: SimpleSpan, marker: &'static str) -> Self {
        Rich::custom(span, marker)
    }
}

/// Marker prefix of custom errors that carry their own diagnostic code.
pub(crate) const CHAINED: &str = "chained comparison";
pub(crate) const MISSING_VALUE: &str = "missing value";

/// What follows the first element of a list: more elements, or a comprehension's `for`.
enum ListTail {
    Items(Vec<Expr>),
    Comprehension(Vec<Name>, Expr, Option<Expr>),
}

fn sp(s: SimpleSpan) -> Span {
    Span::from(s.start..s.end)
}

fn boxed(e: Expr) -> Box<Expr> {
    Box::new(e)
}

pub(crate) fn item<'t, 's: 't, I, Er>() -> impl Parser<'t, I, Stmt, extra::Err<Er>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
    Er: chumsky::error::Error<'t, I> + LabelError<'t, I, &'static str> + GrammarError + 't,
{
    let ident = select! { Token::Ident(s) => s }
        .map_with(|s: &str, e| Name { text: s.to_owned(), span: sp(e.span()) })
        .labelled("a name");

    let int = select! { Token::Int(raw) => raw }
        .map(|raw: &str| IntLit {
            // The lexer only emits `Int` for literals that `parse_int` accepts.
            value: parse_int(raw).unwrap_or_default(),
            raw: raw.to_owned(),
        })
        .labelled("an integer");

    // `expr`, `ty` and `stmt` are built with `recursive`, whose parser refers to itself weakly:
    // one built with `Recursive::declare` that holds a clone of itself is a reference cycle,
    // never freed, and a parser is built for every file parsed. `string` and `key` are built
    // twice: inside `expr` from its weak handle, and outside from the finished `expr`.
    type ExprRec<'t, I, Er> = Recursive<chumsky::recursive::Direct<'t, 't, I, Expr, extra::Err<Er>>>;
    let make_string = |expr: ExprRec<'t, I, Er>| {
        let str_part = select! { Token::StrText(s) => s }
            .map_with(|s: &str, e| StrPart::Text { raw: s.to_owned(), span: sp(e.span()) })
            .or(expr
                .clone()
                .delimited_by(just(Token::InterpOpen), just(Token::InterpClose))
                .map(StrPart::Interp));
        just(Token::StrOpen)
            .to(false)
            .or(just(Token::MStrOpen).to(true))
            .then(str_part.repeated().collect::<Vec<_>>())
            .then_ignore(just(Token::StrClose))
            .map_with(|(multiline, parts), e| StrLit { parts, multiline, span: sp(e.span()) })
            .labelled("a string")
            .boxed()
    };
    let make_key = |string: Boxed<'t, 't, I, StrLit, extra::Err<Er>>| {
        ident.clone().map(Key::Ident).or(string.map(Key::Str)).labelled("a key")
    };
    // ---- expressions ----
    let expr = recursive(|expr: ExprRec<'t, I, Er>| {
        let string = make_string(expr.clone());
        let key = make_key(string.clone());
        let lparen = just(Token::LParen).or(just(Token::LParenLine));
        let lbracket = just(Token::LBracket).or(just(Token::LBracketLine));
        let record_entry = key
            .clone()
            .then_ignore(just(Token::Eq))
            .then(expr.clone())
            .map_with(|(key, value), e| RecordEntry { key, value, span: sp(e.span()) });
        let if_expr = just(Token::If)
            .ignore_then(expr.clone())
            .then_ignore(just(Token::Then))
            .then(expr.clone())
            .then_ignore(just(Token::Else))
            .then(expr.clone())
            .map(|((c, a), b)| ExprKind::If(boxed(c), boxed(a), boxed(b)));
        let atom = choice((
            int.clone().map(ExprKind::Int),
            just(Token::True).to(ExprKind::Bool(true)),
            just(Token::False).to(ExprKind::Bool(false)),
            just(Token::Null).to(ExprKind::Null),
            string.clone().map(ExprKind::Str),
            ident.clone().map(ExprKind::Name),
            expr.clone()
                .then(
                    just(Token::For)
                        .ignore_then(ident.clone())
                        .then(just(Token::Comma).ignore_then(ident.clone()).or_not())
                        .then_ignore(just(Token::In))
                        .then(expr.clone())
                        .then(just(Token::If).ignore_then(expr.clone()).or_not())
                        .map(|(((first, second), iter), cond)| {
                            let mut bindings = vec![first];
                            bindings.extend(second);
                            ListTail::Comprehension(bindings, iter, cond)
                        })
                        .or(just(Token::Comma)
                            .ignore_then(
                                expr.clone()
                                    .separated_by(just(Token::Comma))
                                    .allow_trailing()
                                    .collect::<Vec<_>>(),
                            )
                            .or_not()
                            .map(|rest| ListTail::Items(rest.unwrap_or_default()))),
                )
                .or_not()
                .delimited_by(lbracket.clone(), just(Token::RBracket))
                .map(|list| match list {
                    None => ExprKind::List(Vec::new()),
                    Some((value, ListTail::Comprehension(bindings, iter, cond))) => {
                        ExprKind::Comprehension(Box::new(Comprehension { value, bindings, iter, cond }))
                    }
                    Some((first, ListTail::Items(mut rest))) => {
                        rest.insert(0, first);
                        ExprKind::List(rest)
                    }
                }),
            record_entry
                .then_ignore(just(Token::Comma).or_not())
                .repeated()
                .collect::<Vec<_>>()
                .delimited_by(just(Token::LBrace), just(Token::RBrace))
                .map(ExprKind::Record),
            expr.clone().delimited_by(lparen.clone(), just(Token::RParen)).map(|e| ExprKind::Paren(boxed(e))),
            if_expr,
        ))
        .map_with(|kind, e| Expr { kind, span: sp(e.span()) })
        .labelled("an expression")
        .boxed();

        enum Post {
            Call(Vec<Arg>),
            Member(Name),
            Index(Expr),
        }
        let arg = ident
            .clone()
            .then_ignore(just(Token::Eq))
            .or_not()
            .then(expr.clone())
            .map_with(|(name, value), e| Arg { name, value, span: sp(e.span()) });
        let postfix_op = choice((
            arg.separated_by(just(Token::Comma))
                .allow_trailing()
                .collect::<Vec<_>>()
                .delimited_by(just(Token::LParen), just(Token::RParen))
                .map(Post::Call),
            just(Token::Dot).ignore_then(ident.clone()).map(Post::Member),
            expr.clone().delimited_by(just(Token::LBracket), just(Token::RBracket)).map(Post::Index),
        ));
        let postfix = atom.foldl_with(postfix_op.repeated(), |lhs, op, e| {
            let kind = match op {
                Post::Call(args) => ExprKind::Call(boxed(lhs), args),
                Post::Member(n) => ExprKind::Member(boxed(lhs), n),
                Post::Index(i) => ExprKind::Index(boxed(lhs), boxed(i)),
            };
            Expr { kind, span: sp(e.span()) }
        });
        let neg = just(Token::Minus)
            .map_with(|_, e| e.span())
            .repeated()
            .foldr_with(postfix, |op_span: SimpleSpan, rhs, e| Expr {
                kind: ExprKind::Unary(UnOp::Neg, boxed(rhs)),
                span: sp(e.span()).cover(sp(op_span)),
            })
            .boxed();

        fn binary_level<'t, 's: 't, I, P, O, Er>(
            operand: P,
            ops: O,
        ) -> impl Parser<'t, I, Expr, extra::Err<Er>> + Clone
        where
            I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
            Er: chumsky::error::Error<'t, I> + 't,
            P: Parser<'t, I, Expr, extra::Err<Er>> + Clone,
            O: Parser<'t, I, BinOp, extra::Err<Er>> + Clone,
        {
            operand.clone().foldl_with(ops.then(operand).repeated(), |a, (op, b), e| Expr {
                kind: ExprKind::Binary(op, boxed(a), boxed(b)),
                span: sp(e.span()),
            })
        }
        let mul = binary_level(
            neg,
            choice((
                just(Token::Star).to(BinOp::Mul),
                just(Token::Slash).to(BinOp::Div),
                just(Token::Percent).to(BinOp::Rem),
            )),
        )
        .boxed();
        let add =
            binary_level(mul, choice((just(Token::Plus).to(BinOp::Add), just(Token::Minus).to(BinOp::Sub))))
                .boxed();
        let bitand = binary_level(add, just(Token::Amp).to(BinOp::BitAnd)).boxed();
        let bitxor = binary_level(bitand, just(Token::Caret).to(BinOp::BitXor)).boxed();
        let bitor = binary_level(bitxor, just(Token::Pipe).to(BinOp::BitOr)).boxed();
        let cmp_op = choice((
            just(Token::EqEq).to(BinOp::Eq),
            just(Token::NotEq).to(BinOp::Ne),
            just(Token::Le).to(BinOp::Le),
            just(Token::Lt).to(BinOp::Lt),
            just(Token::Ge).to(BinOp::Ge),
            just(Token::Gt).to(BinOp::Gt),
            just(Token::In).to(BinOp::In),
        ))
        .map_with(|op, e| (op, e.span()));
        let cmp = bitor
            .clone()
            .then(cmp_op.then(bitor).repeated().collect::<Vec<_>>())
            .validate(|(first, rest), _, emitter| {
                if let Some(((_, op_span), _)) = rest.get(1) {
                    emitter.emit(Er::custom(*op_span, CHAINED));
                }
                let mut acc = first;
                for ((op, _), rhs) in rest {
                    let span = acc.span.cover(rhs.span);
                    acc = Expr { kind: ExprKind::Binary(op, boxed(acc), boxed(rhs)), span };
                }
                acc
            })
            .boxed();
        let not = just(Token::Not)
            .map_with(|_, e| e.span())
            .repeated()
            .foldr_with(cmp, |op_span: SimpleSpan, rhs, e| Expr {
                kind: ExprKind::Unary(UnOp::Not, boxed(rhs)),
                span: sp(e.span()).cover(sp(op_span)),
            })
            .boxed();
        let and = binary_level(not, just(Token::And).to(BinOp::And)).boxed();
        let or = binary_level(and, just(Token::Or).to(BinOp::Or)).boxed();
        or.labelled("an expression")
    });
    let string = make_string(expr.clone());
    let key = make_key(string.clone());

    // ---- types ----
    let lparen = just(Token::LParen).or(just(Token::LParenLine));
    let name_path = ident.clone().separated_by(just(Token::Dot)).at_least(1).collect::<Vec<_>>();
    let ty = recursive(|ty| {
        let type_atom = choice((
            string.clone().map(TypeKind::Str),
            int.clone().map(TypeKind::Int),
            ident
                .clone()
                .then(
                    ty.clone()
                        .separated_by(just(Token::Comma))
                        .allow_trailing()
                        .at_least(1)
                        .collect::<Vec<_>>()
                        .delimited_by(lparen.clone(), just(Token::RParen)),
                )
                .map(|(n, args)| TypeKind::App(n, args)),
            name_path.clone().map(TypeKind::Named),
            key.clone()
                .then_ignore(just(Token::Colon))
                .then(ty.clone())
                .separated_by(just(Token::Comma).or_not())
                .allow_trailing()
                .collect::<Vec<_>>()
                .delimited_by(just(Token::LBrace), just(Token::RBrace))
                .map(TypeKind::Record),
        ))
        .map_with(|kind, e| Type { kind, span: sp(e.span()) })
        .foldl_with(just(Token::Question).repeated(), |t, _, e| Type {
            kind: TypeKind::Optional(Box::new(t)),
            span: sp(e.span()),
        });
        type_atom
            .separated_by(just(Token::Pipe))
            .at_least(1)
            .collect::<Vec<_>>()
            .map_with(|mut ts, e| {
                if ts.len() == 1 {
                    ts.remove(0)
                } else {
                    Type { kind: TypeKind::Union(ts), span: sp(e.span()) }
                }
            })
            .labelled("a type")
    });

    let stmt = recursive(|stmt| {
        // ---- statements ----
        let block = stmt
            .clone()
            .then_ignore(just(Token::Comma).or_not())
            .repeated()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .map_with(|stmts, e| Block { stmts, span: sp(e.span()) })
            .labelled("a block `{ … }`")
            .boxed();

        let use_names = ident
            .clone()
            .then(just(Token::As).ignore_then(ident.clone()).or_not())
            .map(|(name, alias)| UseName { name, alias })
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .at_least(1)
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace));
        let use_path = string
            .clone()
            .map(UsePath::File)
            .or(ident
                .clone()
                .then(just(Token::Dot).ignore_then(ident.clone()).repeated().collect::<Vec<_>>())
                .map(|(first, mut rest)| {
                    rest.insert(0, first);
                    UsePath::Module(rest)
                }))
            .labelled("a module path");
        let use_decl = just(Token::Use)
            .ignore_then(use_path)
            .then(just(Token::Dot).ignore_then(use_names).or_not())
            .then(just(Token::As).ignore_then(ident.clone()).or_not())
            .map(|((path, names), alias)| StmtKind::Use(UseDecl { path, alias, names }))
            .labelled("`use`")
            .as_context();

        let param = just(Token::Param)
            .ignore_then(ident.clone())
            .then_ignore(just(Token::Colon))
            .then(ty.clone())
            .then(just(Token::Eq).ignore_then(expr.clone()).or_not())
            .map(|((name, ty), default)| StmtKind::Param(Box::new(ParamDecl { name, ty, default })))
            .labelled("`param`")
            .as_context();

        let let_decl = just(Token::Let)
            .ignore_then(ident.clone())
            .then(just(Token::Colon).ignore_then(ty.clone()).or_not())
            .then_ignore(just(Token::Eq))
            .then(expr.clone())
            .map(|((name, ty), value)| StmtKind::Let(Box::new(LetDecl { name, ty, value })))
            .labelled("`let`")
            .as_context();

        let kind_decl = just(Token::Kind)
            .ignore_then(ident.clone())
            .then(block.clone())
            .map(|(name, body)| StmtKind::Kind(KindDecl { name, body }))
            .labelled("`kind`")
            .as_context();

        let rule_param = ident
            .clone()
            .then_ignore(just(Token::Colon))
            .then(ty.clone())
            .map(|(name, ty)| RuleParam { name, ty });
        let rule = just(Token::Rule)
            .ignore_then(ident.clone())
            .then(
                rule_param
                    .separated_by(just(Token::Comma))
                    .allow_trailing()
                    .collect::<Vec<_>>()
                    .delimited_by(lparen.clone(), just(Token::RParen)),
            )
            .then_ignore(just(Token::Eq))
            .then(expr.clone())
            .then(just(Token::Else).ignore_then(expr.clone()).or_not())
            .map(|(((name, params), body), message)| {
                StmtKind::Rule(Box::new(RuleDecl { name, params, body, message }))
            })
            .labelled("`rule`")
            .as_context();

        let policy = just(Token::Policy)
            .ignore_then(ident.clone())
            .then(block.clone())
            .map(|(name, body)| StmtKind::Policy(PolicyDecl { name, body }))
            .labelled("`policy`")
            .as_context();

        let control = just(Token::Control)
            .ignore_then(ident.clone().map(ControlId::Ident).or(string.clone().map(ControlId::Str)))
            .then(block.clone())
            .map(|(id, body)| StmtKind::Control(ControlDecl { id, body }))
            .labelled("`control`")
            .as_context();

        let for_stmt = just(Token::For)
            .ignore_then(ident.clone())
            .then(just(Token::Comma).ignore_then(ident.clone()).or_not())
            .then_ignore(just(Token::In))
            .then(expr.clone())
            .then(block.clone())
            .map(|(((first, second), iter), body)| {
                let mut bindings = vec![first];
                bindings.extend(second);
                StmtKind::For(Box::new(ForStmt { bindings, iter, body }))
            })
            .labelled("`for`")
            .as_context();

        let if_stmt = recursive(|if_stmt| {
            just(Token::If)
                .ignore_then(expr.clone())
                .then(block.clone())
                .then(
                    just(Token::Else)
                        .ignore_then(
                            if_stmt
                                .map_with(|kind, e| {
                                    Else::If(Box::new(Stmt { kind, span: sp(e.span()), doc: None }))
                                })
                                .or(block.clone().map(Else::Block)),
                        )
                        .or_not(),
                )
                .map(|((cond, then), otherwise)| StmtKind::If(Box::new(IfStmt { cond, then, otherwise })))
        })
        .labelled("`if`")
        .as_context();

        let require = just(Token::Require)
            .ignore_then(expr.clone())
            .then(just(Token::Else).ignore_then(expr.clone()).or_not())
            .map(|(cond, message)| StmtKind::Require(Require { cond, message: message.map(Box::new) }))
            .labelled("`require`")
            .as_context();

        let provider = select! { Token::Ident("provider") => () }
            .ignore_then(ident.clone())
            .then(ident.clone())
            .then(block.clone())
            .map(|((provider_type, name), body)| {
                StmtKind::Provider(ProviderDecl { provider_type, name, body })
            })
            .labelled("`provider`")
            .as_context();

        let stack = select! { Token::Ident("stack") => () }
            .ignore_then(ident.clone())
            .then(block.clone())
            .map(|(name, body)| StmtKind::Stack(StackDecl { name, body }))
            .labelled("`stack`")
            .as_context();

        // `waive control NAME for file[/srv/app/legacy.sh] until "2027-03-31" reason "…"`; the
        // bracketed object is taken as written, whatever its tokens.
        let waive = select! { Token::Ident("waive") => () }
            .ignore_then(just(Token::Control))
            .ignore_then(ident.clone())
            .then_ignore(just(Token::For))
            .then(name_path.clone())
            .then(
                any()
                    .filter(|t: &Token<'_>| {
                        !matches!(t, Token::RBracket | Token::LBracket | Token::LBracketLine)
                    })
                    .repeated()
                    .at_least(1)
                    .map_with(|_, e| sp(e.span()))
                    .delimited_by(just(Token::LBracket), just(Token::RBracket))
                    .or_not(),
            )
            .then_ignore(select! { Token::Ident("until") => () })
            .then(string.clone())
            .then_ignore(select! { Token::Ident("reason") => () })
            .then(string.clone())
            .map(|((((control, subject), object), until), reason)| {
                StmtKind::Waive(Box::new(WaiveDecl { control, subject, object, until, reason }))
            })
            .labelled("`waive control NAME for SUBJECT until \"DATE\" reason \"…\"`")
            .as_context();

        // Tests, in `*_test.iade` files.
        let test_decl = select! { Token::Ident("test") => () }
            .ignore_then(string.clone())
            .then(block.clone())
            .map(|(name, body)| StmtKind::Test(TestDecl { name, body }))
            .labelled("`test \"name\" { … }`")
            .as_context();
        let test_param = select! { Token::Ident("with") => () }
            .ignore_then(just(Token::Param))
            .ignore_then(ident.clone())
            .then_ignore(just(Token::Eq))
            .then(expr.clone())
            .map(|(name, value)| StmtKind::TestParam(name, value))
            .labelled("`with param NAME = value`")
            .as_context();
        let observed = select! { Token::Ident("observed") => () }
            .ignore_then(name_path.clone())
            .then(block.clone())
            .map(|(kind, body)| {
                let name = ResourceName::Ident(Name { text: String::new(), span: Span::empty(0) });
                StmtKind::Observed(ResourceDecl { kind, name, body })
            })
            .labelled("`observed KIND { … }`")
            .as_context();
        // A control's id may be a string (`"CIS-6.1.10"`).
        let check_name = ident
            .clone()
            .or(string.clone().map(|s| Name { text: s.as_plain().unwrap_or_default(), span: s.span }));
        let expect_check = just(Token::Control)
            .to(true)
            .or(just(Token::Policy).to(false))
            .then(check_name)
            .then(ident.clone())
            .map(|((control, name), outcome)| Expect::Check { control, name, outcome });
        let expect_snapshot =
            select! { Token::Ident("snapshot") => () }.ignore_then(string.clone()).map(Expect::Snapshot);
        let expect = select! { Token::Ident("expect") => () }
            .ignore_then(choice((expect_check, expect_snapshot, expr.clone().map(Expect::Expr))))
            .map(StmtKind::Expect)
            .labelled("`expect …`")
            .as_context();

        let component_param = ident
            .clone()
            .then_ignore(just(Token::Colon))
            .then(ty.clone())
            .then(just(Token::Eq).ignore_then(expr.clone()).or_not())
            .map(|((name, ty), default)| ComponentParam { name, ty, default });
        let component = select! { Token::Ident("component") => () }
            .ignore_then(ident.clone())
            .then(
                component_param
                    .separated_by(just(Token::Comma))
                    .allow_trailing()
                    .collect::<Vec<_>>()
                    .delimited_by(lparen.clone(), just(Token::RParen))
                    .or_not(),
            )
            .then(block.clone())
            .map(|((name, params), body)| {
                StmtKind::Component(Box::new(ComponentDecl {
                    name,
                    params: params.unwrap_or_default(),
                    body,
                }))
            })
            .labelled("`component`")
            .as_context();

        let field = ident
            .clone()
            .then(ident.clone())
            .then_ignore(just(Token::Colon))
            .then(ty.clone())
            // `refers` is a word only here: elsewhere it is an ordinary name.
            .then(select! { Token::Ident(w) if w == "refers" => () }.ignore_then(name_path.clone()).or_not())
            .then(just(Token::Eq).ignore_then(expr.clone()).or_not())
            .then(just(Token::Where).ignore_then(expr.clone()).or_not())
            .map(|(((((role, name), ty), refers), default), constraint)| {
                StmtKind::Field(Box::new(FieldDecl { role, name, ty, refers, default, constraint }))
            })
            .labelled("a field declaration")
            .as_context();

        let resource_name = ident
            .clone()
            .map(ResourceName::Ident)
            .or(string.clone().map(ResourceName::Str))
            .labelled("a resource name");
        let resource = name_path
            .clone()
            .then(resource_name)
            .then(block.clone())
            .map(|((kind, name), body)| StmtKind::Resource(ResourceDecl { kind, name, body }))
            .labelled("a resource declaration")
            .as_context();

        // `path =` directly followed by the next entry `mode = …`: one clear error, not two.
        let missing_value = key
            .clone()
            .then(just(Token::Eq).map_with(|_, e| e.span()))
            .then_ignore(ident.clone().then(just(Token::Eq)).rewind())
            .validate(|(key, eq_span), _, emitter| {
                emitter.emit(Er::custom(SimpleSpan::from(eq_span.end..eq_span.end), MISSING_VALUE));
                let span = Span::empty(eq_span.end as u32);
                StmtKind::Attr(Attr { key, value: Expr { kind: ExprKind::Error, span } })
            });
        let attr = key
            .clone()
            .then_ignore(just(Token::Eq))
            .then(expr.clone())
            .map(|(key, value)| StmtKind::Attr(Attr { key, value }))
            .labelled("an entry `name = value`");

        choice((
            use_decl,
            param,
            let_decl,
            kind_decl,
            rule,
            policy,
            control,
            for_stmt,
            if_stmt,
            require,
            // Entries are the most common statement, so they are tried before the forms that
            // share their first token; all of these differ at the second token.
            missing_value,
            attr,
            provider,
            stack,
            waive,
            test_decl,
            test_param,
            observed,
            expect,
            component,
            field,
            resource,
        ))
        .map_with(|kind, e| Stmt { kind, span: sp(e.span()), doc: None })
        .boxed()
    });

    stmt.then_ignore(end())
}
