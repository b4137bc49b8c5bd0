//! Editor features as plain functions over the compiler's database: what a language server
//! asks, answerable from tests without a server. Positions are byte offsets into a file's text;
//! the protocol crate converts them (UTF-16 lines and columns) at its edge.
//!
//! **Invariant:** this crate knows no protocol: it returns its own types, and `iade-lsp` is
//! the only crate that speaks LSP.

use iade_compiler::{Database, ItemCategory, ItemInfo, Place};
use iade_intent::ir::Builtin;
use iade_span::Span;
use iade_syntax::token::{Token, lex};

/// A symbol of a file's outline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub detail: Option<String>,
    pub category: ItemCategory,
    pub span: Span,
    pub name_span: Span,
}

/// What hovering shows: Markdown, and the range it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hover {
    pub markdown: String,
    pub span: Span,
}

/// A completion candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub label: String,
    /// A type, a signature or what the name is.
    pub detail: String,
    pub doc: Option<String>,
    pub kind: CompletionKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    Kind,
    Field,
    Name,
    Function,
    EnumMember,
}

/// The outline of a file.
pub fn outline(db: &Database, path: &str) -> Vec<Symbol> {
    let Some(file) = db.file_at(path) else { return Vec::new() };
    db.file_outline(file)
        .into_iter()
        .filter(|i| i.category != ItemCategory::Use)
        .map(|ItemInfo { name, detail, category, span, name_span }| Symbol {
            name,
            detail,
            category,
            span,
            name_span,
        })
        .collect()
}

/// The identifier under `offset` (or just before it), with its span and the identifier before
/// a `.` that precedes it, if any (`file` in `file.config`).
fn ident_at(text: &str, offset: u32) -> Option<(String, Span, Option<String>)> {
    let lexed = lex(iade_span::FileId(0), text);
    let toks = &lexed.tokens;
    let i = toks
        .iter()
        .position(|t| t.span.start <= offset && offset <= t.span.end && matches!(t.token, Token::Ident(_)))?;
    let Token::Ident(name) = toks[i].token else { return None };
    let qualifier = match (i.checked_sub(2).map(|j| toks[j].token), i.checked_sub(1).map(|j| toks[j].token)) {
        (Some(Token::Ident(q)), Some(Token::Dot)) => Some(q.to_string()),
        _ => None,
    };
    Some((name.to_string(), toks[i].span, qualifier))
}

/// Where what is under `offset` is declared: a resource named `kind.name`, or a name in scope.
pub fn definition(db: &Database, path: &str, offset: u32) -> Vec<Place> {
    let Some(file) = db.file_at(path) else { return Vec::new() };
    let text = file_text(db, path);
    let Some((name, _, qualifier)) = ident_at(&text, offset) else { return Vec::new() };
    if let Some(q) = qualifier
        && let Some(p) = db.resource_declaration(&format!("{q}.{name}"))
    {
        return vec![p];
    }
    db.declaration_of(file, &name)
}

/// Every use of what is under `offset`, its declaration included.
pub fn references(db: &Database, path: &str, offset: u32) -> Vec<Place> {
    let Some(file) = db.file_at(path) else { return Vec::new() };
    let text = file_text(db, path);
    let Some((name, _, _)) = ident_at(&text, offset) else { return Vec::new() };
    db.references_of(file, &name)
}

/// What hovering over `offset` shows: a kind's or field's docs, a value, a resource's id.
pub fn hover(db: &Database, path: &str, offset: u32) -> Option<Hover> {
    let file = db.file_at(path)?;
    let text = file_text(db, path);
    let (name, span, _) = ident_at(&text, offset)?;
    if let Some(schema) = db.kind_named(file, &name) {
        let mut md = format!("```iade\nkind {}\n```\n", schema.name);
        if let Some(doc) = &schema.doc {
            md.push_str(&format!("\n{doc}\n"));
        }
        md.push_str("\n| field | role | type |\n|---|---|---|\n");
        for f in &schema.fields {
            md.push_str(&format!("| `{}` | {:?} | `{}` |\n", f.name, f.role, f.ty));
        }
        return Some(Hover { markdown: md, span });
    }
    // A field of the resource being written.
    let outline = db.file_outline(file);
    if let Some(item) =
        outline.iter().find(|i| i.span.contains(offset) && i.category == ItemCategory::Resource)
        && let Some(kind) = &item.detail
        && let Some(schema) = db.kind_named(file, kind)
        && let Some(field) = schema.field(&name)
        && !item.name_span.contains(offset)
    {
        let mut md = format!("```iade\n{:?} {}: {}\n```\n", field.role, field.name, field.ty).to_lowercase();
        if let Some(doc) = &field.doc {
            md.push_str(&format!("\n{doc}\n"));
        }
        return Some(Hover { markdown: md, span });
    }
    if let Some(item) = outline.iter().find(|i| i.name_span.contains(offset) || i.name_span.end == offset)
        && matches!(item.category, ItemCategory::Resource | ItemCategory::Instance)
        && let Some((id, value)) = db.resource_at(file, offset)
    {
        return Some(Hover { markdown: format!("```iade\n{id}\n```\n\n{value}"), span });
    }
    if let Some(v) = db.value_of(file, &name) {
        let shown = match &v {
            iade_intent::Value::Unknown(u) => format!("unknown: {}", u.reason),
            other => other.to_string(),
        };
        return Some(Hover { markdown: format!("```iade\n{name} = {shown}\n```"), span });
    }
    if let Some(b) = Builtin::from_name(&name) {
        return Some(Hover { markdown: format!("```iade\n{}\n```\n\n{}", b.signature(), b.doc()), span });
    }
    None
}

/// Candidates at `offset`: the fields of the resource being written (those not set yet,
/// identity fields first), kinds, names in scope and builtins.
pub fn completion(db: &Database, path: &str, offset: u32) -> Vec<Completion> {
    let Some(file) = db.file_at(path) else { return Vec::new() };
    let text = file_text(db, path);
    let mut out = Vec::new();
    let outline = db.file_outline(file);
    let at = (offset as usize).min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..at];
    // After `KIND.`: the resources of that kind the stack declares.
    let word_start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    if before[..word_start].ends_with('.') {
        let head = &before[..word_start - 1];
        let q_start = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let qualifier = &head[q_start..];
        for f in db.stack_file_paths() {
            let Some(other) = db.file_at(&f) else { continue };
            for item in db.file_outline(other) {
                if item.detail.as_deref() == Some(qualifier) {
                    out.push(Completion {
                        label: item.name,
                        detail: format!("{qualifier} resource"),
                        doc: None,
                        kind: CompletionKind::Name,
                    });
                }
            }
        }
        return out;
    }
    // After `field = `: the members of an enum-typed field.
    let assignment = before.trim_start();
    if let Some((field, value)) = assignment.split_once('=')
        && value.trim().chars().all(|c| c.is_alphanumeric() || c == '_')
        && let Some(kind) = enclosing_kind(&outline, &text, offset)
        && let Some(schema) = db.kind_named(file, &kind)
        && let Some(f) = schema.field(field.trim())
        && let Some(members) = f.ty.enum_members()
    {
        return members
            .iter()
            .map(|m| Completion {
                label: m.clone(),
                detail: f.ty.to_string(),
                doc: None,
                kind: CompletionKind::EnumMember,
            })
            .collect();
    }
    if let Some(item) =
        outline.iter().find(|i| i.span.contains(offset) && i.category == ItemCategory::Resource)
        && let Some(kind) = &item.detail
        && let Some(schema) = db.kind_named(file, kind)
    {
        let body = text.get(item.span.range()).unwrap_or_default();
        let mut fields: Vec<_> =
            schema.fields.iter().filter(|f| f.role != iade_intent::FieldRole::Observed).collect();
        fields.sort_by_key(|f| f.role != iade_intent::FieldRole::Identity);
        for f in fields {
            let set = body.lines().any(|l| {
                l.trim_start().starts_with(&format!("{} ", f.name))
                    || l.trim_start().starts_with(&format!("{}=", f.name))
            });
            if set {
                continue;
            }
            out.push(Completion {
                label: f.name.clone(),
                detail: f.ty.to_string(),
                doc: f.doc.clone(),
                kind: CompletionKind::Field,
            });
        }
        for meta in ["after", "notify", "manage", "provider", "protect"] {
            out.push(Completion {
                label: meta.into(),
                detail: "meta-attribute".into(),
                doc: None,
                kind: CompletionKind::Field,
            });
        }
    }
    for (name, schema) in db.kinds_in_scope(file) {
        out.push(Completion {
            label: name,
            detail: "kind".into(),
            doc: schema.doc.clone(),
            kind: CompletionKind::Kind,
        });
    }
    for (name, what) in db.names_in_scope(file) {
        if !out.iter().any(|c| c.label == name) {
            out.push(Completion { label: name, detail: what.into(), doc: None, kind: CompletionKind::Name });
        }
    }
    for b in Builtin::ALL {
        out.push(Completion {
            label: b.name().into(),
            detail: b.signature().into(),
            doc: Some(b.doc().into()),
            kind: CompletionKind::Function,
        });
    }
    out
}

/// The kind of the resource being written at `offset`: from the parsed item, or, while the
/// text does not parse, from the nearest `KIND NAME {` line above.
fn enclosing_kind(outline: &[ItemInfo], text: &str, offset: u32) -> Option<String> {
    if let Some(item) =
        outline.iter().find(|i| i.span.contains(offset) && i.category == ItemCategory::Resource)
    {
        return item.detail.clone();
    }
    let at = (offset as usize).min(text.len());
    for line in text[..at].lines().rev() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [kind, _name, "{", ..] = words.as_slice()
            && kind.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            return Some((*kind).to_string());
        }
        if line.starts_with('}') {
            return None;
        }
    }
    None
}

/// The file formatted as `iade fmt` formats it; `None` when it has syntax errors.
pub fn format(text: &str) -> Option<String> {
    iade_fmt::format(text).ok()
}

fn file_text(db: &Database, path: &str) -> String {
    db.file_text(path).unwrap_or_default()
}

/// An edit of one file: replace `span` with `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub path: String,
    pub span: Span,
    pub text: String,
}

/// A quick fix for a diagnostic: a title and its edits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuickFix {
    pub title: String,
    pub edits: Vec<Edit>,
    /// The diagnostic it fixes (its code).
    pub code: String,
}

/// The quick fixes of the diagnostics whose primary label in `path` overlaps `span`: each
/// machine-applicable fix they carry, and each "did you mean `x`?" help as a replacement of the
/// primary label's text.
pub fn quick_fixes(
    db: &Database,
    diagnostics: &[iade_diagnostics::Diagnostic],
    path: &str,
    span: Span,
) -> Vec<QuickFix> {
    let sources = db.sources();
    let mut out = Vec::new();
    for d in diagnostics {
        let Some(primary) = d.primary_label() else { continue };
        let Some(file) = sources.get(primary.file) else { continue };
        if file.path != path || primary.span.end < span.start || primary.span.start > span.end {
            continue;
        }
        for f in &d.fixes {
            let Some(target) = sources.get(f.file) else { continue };
            out.push(QuickFix {
                title: f.title.clone(),
                edits: vec![Edit { path: target.path.clone(), span: f.span, text: f.replacement.clone() }],
                code: d.code.as_str().to_string(),
            });
        }
        if let Some(help) = &d.help
            && let Some(rest) = help.strip_prefix("did you mean `")
            && let Some(name) = rest.split('`').next()
            && !name.is_empty()
            && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            out.push(QuickFix {
                title: format!("change to `{name}`"),
                edits: vec![Edit { path: file.path.clone(), span: primary.span, text: name.to_string() }],
                code: d.code.as_str().to_string(),
            });
        }
    }
    out
}

/// Why a rename cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenameError {
    NothingToRename,
    InvalidName(String),
    Taken(String),
}

/// The edits that rename what is under `offset` (a resource, let, param or rule of the stack)
/// to `new_name` everywhere it is used. Refused when the name is not an identifier or is taken.
pub fn rename(db: &Database, path: &str, offset: u32, new_name: &str) -> Result<Vec<Edit>, RenameError> {
    let file = db.file_at(path).ok_or(RenameError::NothingToRename)?;
    let text = file_text(db, path);
    let (name, _, _) = ident_at(&text, offset).ok_or(RenameError::NothingToRename)?;
    let valid = new_name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && new_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !lex(iade_span::FileId(0), new_name).tokens.iter().any(|t| t.token.is_keyword());
    if !valid {
        return Err(RenameError::InvalidName(new_name.to_string()));
    }
    let decls = db.declaration_of(file, &name);
    if decls.is_empty() || decls.iter().any(|d| d.path.contains("std/") || d.path.starts_with('<')) {
        return Err(RenameError::NothingToRename);
    }
    if !db.declaration_of(file, new_name).is_empty() {
        return Err(RenameError::Taken(new_name.to_string()));
    }
    Ok(db
        .references_of(file, &name)
        .into_iter()
        .map(|p| Edit { path: p.path, span: p.span, text: new_name.to_string() })
        .collect())
}

/// How a token is highlighted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenClass {
    Keyword,
    String,
    Number,
    Comment,
    Operator,
    Name,
}

/// Every token of a text with its class, in order, comments included.
pub fn highlight(text: &str) -> Vec<(Span, TokenClass)> {
    let lexed = lex(iade_span::FileId(0), text);
    let mut out: Vec<(Span, TokenClass)> = lexed
        .tokens
        .iter()
        .filter_map(|t| {
            let class = match t.token {
                Token::Ident(_) => TokenClass::Name,
                Token::Int(_) => TokenClass::Number,
                Token::StrText(_) => TokenClass::String,
                ref k if k.is_keyword() => TokenClass::Keyword,
                Token::StrOpen | Token::MStrOpen | Token::StrClose => TokenClass::String,
                Token::Error => return None,
                _ => TokenClass::Operator,
            };
            Some((t.span, class))
        })
        .collect();
    out.extend(lexed.comments.iter().map(|c| (c.span, TokenClass::Comment)));
    out.sort_by_key(|(s, _)| (s.start, s.end));
    out
}
