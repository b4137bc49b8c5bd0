//! Attaches `##` doc comments to the statement that follows them.

use iade_diagnostics::{Diagnostic, codes};
use iade_span::{FileId, Span};

use crate::ast::{Block, Else, SourceFile, Stmt, StmtKind};
use crate::token::{Comment, CommentKind};

/// Calls `f` on each block directly inside a statement, in source order.
pub(crate) fn for_each_block_mut(kind: &mut StmtKind, f: &mut impl FnMut(&mut Block)) {
    match kind {
        StmtKind::Resource(r) => f(&mut r.body),
        StmtKind::Provider(p) => f(&mut p.body),
        StmtKind::Kind(k) => f(&mut k.body),
        StmtKind::Component(c) => f(&mut c.body),
        StmtKind::Policy(p) => f(&mut p.body),
        StmtKind::Control(c) => f(&mut c.body),
        StmtKind::For(fs) => f(&mut fs.body),
        StmtKind::If(i) => {
            f(&mut i.then);
            match &mut i.otherwise {
                Some(Else::Block(b)) => f(b),
                Some(Else::If(s)) => for_each_block_mut(&mut s.kind, f),
                None => {}
            }
        }
        _ => {}
    }
}

struct Attacher<'a> {
    text: &'a str,
    comments: &'a [Comment],
    used: Vec<bool>,
}

impl Attacher<'_> {
    /// Doc comments on the lines directly above `start` (absolute).
    fn doc_before(&mut self, start: u32) -> Option<String> {
        let mut idx = self.comments.partition_point(|c| c.span.start < start);
        let mut boundary = start;
        let mut taken = Vec::new();
        while idx > 0 {
            let c = &self.comments[idx - 1];
            let between = self.text.get(c.span.end as usize..boundary as usize).unwrap_or("x");
            let adjacent = between.chars().all(char::is_whitespace) && between.matches('\n').count() <= 1;
            if c.kind != CommentKind::Doc || c.trailing || !adjacent {
                break;
            }
            taken.push(idx - 1);
            boundary = c.span.start;
            idx -= 1;
        }
        if taken.is_empty() {
            return None;
        }
        taken.reverse();
        let lines: Vec<&str> = taken
            .iter()
            .map(|&i| {
                self.used[i] = true;
                let t = self.comments[i].text.trim_start_matches("##");
                t.strip_prefix(' ').unwrap_or(t).trim_end()
            })
            .collect();
        Some(lines.join("\n"))
    }

    /// Whether a doc comment that can document something (not trailing) lies within `span`
    /// (absolute). A statement's doc comment lies in its block, after the `{`.
    fn doc_within(&self, span: Span) -> bool {
        let first = self.comments.partition_point(|c| c.span.start < span.start);
        self.comments[first..]
            .iter()
            .take_while(|c| c.span.start < span.end)
            .any(|c| c.kind == CommentKind::Doc && !c.trailing)
    }

    fn stmt(&mut self, offset: u32, s: &mut Stmt) {
        s.doc = self.doc_before(s.span.start + offset).map(String::into_boxed_str);
        for_each_block_mut(&mut s.kind, &mut |b| {
            // Most blocks hold no doc comment: their statements keep `doc: None`.
            if !self.doc_within(b.span.absolute_from(offset)) {
                return;
            }
            for inner in &mut b.stmts {
                self.stmt(offset, inner);
            }
        });
    }
}

/// Sets `doc` on every statement; returns warnings for doc comments that document nothing.
pub(crate) fn attach(
    file: FileId,
    text: &str,
    tree: &mut SourceFile,
    comments: &[Comment],
) -> Vec<Diagnostic> {
    let mut a = Attacher { text, comments, used: vec![false; comments.len()] };
    for item in &mut tree.items {
        let offset = item.offset;
        // The tree was just built, so nothing else holds the item yet and this does not copy.
        a.stmt(offset, std::sync::Arc::make_mut(&mut item.stmt));
    }
    comments
        .iter()
        .zip(&a.used)
        .filter(|(c, used)| c.kind == CommentKind::Doc && !**used && !c.trailing)
        .map(|(c, _)| {
            Diagnostic::new(codes::W0001, "doc comment documents nothing")
                .primary(
                    file,
                    Span::new(c.span.start, c.span.start + 2),
                    "this doc comment is not followed by an item",
                )
                .help("move it directly above an item, field or entry, or use `#` for a plain comment")
        })
        .collect()
}
