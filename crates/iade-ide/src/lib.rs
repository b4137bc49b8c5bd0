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
    // After `a.b.`: what may follow the dots.
    let word_start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    if let Some(chain) = dotted_chain(&before[..word_start]) {
        if let [qualifier] = chain.as_slice() {
            // `KIND.` or `COMPONENT.`: the resources or instances the stack declares.
            for f in db.stack_file_paths() {
                let Some(other) = db.file_at(&f) else { continue };
                for item in db.file_outline(other) {
                    if item.detail.as_deref() == Some(qualifier.as_str()) {
                        out.push(Completion {
                            label: item.name,
                            detail: format!(
                                "{qualifier} {}",
                                match item.category {
                                    ItemCategory::Instance => "instance",
                                    _ => "resource",
                                }
                            ),
                            doc: None,
                            kind: CompletionKind::Name,
                        });
                    }
                }
            }
        }
        out.extend(db.members_after(file, &chain).into_iter().map(|m| Completion {
            label: m.name,
            detail: m.detail,
            doc: m.doc,
            kind: CompletionKind::Field,
        }));
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
                label: f.name.to_string(),
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

/// The names before a trailing `.` (`vhost.api.` gives `[vhost, api]`), or `None` when the
/// text does not end in a dotted chain of names.
fn dotted_chain(text: &str) -> Option<Vec<String>> {
    let mut rest = text.strip_suffix('.')?;
    let mut chain = Vec::new();
    loop {
        let start = rest.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let name = &rest[start..];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        chain.push(name.to_string());
        match rest[..start].strip_suffix('.') {
            Some(r) => rest = r,
            None => break,
        }
    }
    chain.reverse();
    Some(chain)
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

/// "Add the missing required fields" for the resource or instance at `offset`: one edit that
/// inserts each unset identity field (or param without a default) with a placeholder of its
/// type before the closing brace. `None` when nothing is missing.
pub fn add_missing_fields(db: &Database, path: &str, offset: u32) -> Option<QuickFix> {
    let file = db.file_at(path)?;
    let text = file_text(db, path);
    let missing = db.missing_required(file, offset)?;
    if missing.missing.is_empty() {
        return None;
    }
    let item = text.get(missing.span.range())?;
    if !item.ends_with('}') {
        return None;
    }
    let close = missing.span.end - 1;
    let line_start = text[..missing.span.start as usize].rfind('\n').map_or(0, |i| i + 1);
    let indent: String = text[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
    let fields: String = missing
        .missing
        .iter()
        .map(|(name, ty)| format!("{indent}    {name} = {}\n", placeholder(ty)))
        .collect();
    // The closing brace alone on its line: insert above it; otherwise open the body up.
    let close_line = text[..close as usize].rfind('\n').map_or(0, |i| i + 1);
    let edit = if text[close_line..close as usize].trim().is_empty() {
        Edit { path: path.to_string(), span: Span::empty(close_line as u32), text: fields }
    } else {
        let open = item.find('{').map(|i| missing.span.start + i as u32 + 1)?;
        let inner = text.get(open as usize..close as usize).unwrap_or_default().trim();
        let mut body = String::from("\n");
        if !inner.is_empty() {
            body.push_str(&format!("{indent}    {inner}\n"));
        }
        body.push_str(&fields);
        body.push_str(&indent);
        Edit { path: path.to_string(), span: Span::new(open, close), text: body }
    };
    let names: Vec<String> = missing.missing.iter().map(|(n, _)| format!("`{n}`")).collect();
    Some(QuickFix {
        title: format!(
            "add the missing required {} {}",
            if names.len() == 1 { "field" } else { "fields" },
            names.join(", ")
        ),
        edits: vec![edit],
        code: String::new(),
    })
}

/// A value of the type to fill in: the type's simplest value, for the user to replace.
fn placeholder(ty: &iade_intent::Ty) -> String {
    use iade_intent::Ty;
    match ty {
        Ty::Bool => "false".into(),
        Ty::Int => "0".into(),
        Ty::Mode => "0o644".into(),
        Ty::List(_) => "[]".into(),
        Ty::Map(_) => "{}".into(),
        Ty::Record(fields) => {
            let inner: Vec<String> =
                fields.iter().map(|(k, t)| format!("{k} = {}", placeholder(t))).collect();
            format!("{{ {} }}", inner.join(", "))
        }
        Ty::Enum(members) => members.first().cloned().unwrap_or_else(|| "null".into()),
        Ty::StrLit(s) => format!("{s:?}"),
        Ty::IntLit(i) => i.to_string(),
        Ty::Union(alts) => alts.first().map_or_else(|| "null".into(), placeholder),
        Ty::Optional(_) | Ty::Null | Ty::Any | Ty::Kind(_) => "null".into(),
        Ty::String | Ty::Path | Ty::Source | Ty::Secret => "\"\"".into(),
    }
}

/// An inlay hint: a label shown at an offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlayHint {
    pub offset: u32,
    pub label: String,
}

/// The evaluated value after each interpolated string of a top-level `let` or resource field
/// (`"/srv/${app}"` shows `= "/srv/api"`); secrets stay redacted, long values are cut.
pub fn inlay_hints(db: &Database, path: &str) -> Vec<InlayHint> {
    let Some(file) = db.file_at(path) else { return Vec::new() };
    db.interpolation_values(file)
        .into_iter()
        .filter(|(_, v)| !matches!(v, iade_intent::Value::Unknown(_)))
        .map(|(offset, v)| {
            let shown = v.to_string().replace('\n', "\\n");
            let label = if shown.chars().count() > 60 {
                format!("= {}…", shown.chars().take(60).collect::<String>())
            } else {
                format!("= {shown}")
            };
            InlayHint { offset, label }
        })
        .collect()
}
