//! Human rendering through ariadne.

use std::ops::Range;
use std::sync::Arc;

use ariadne::{Color, Config, IndexType, Label as ALabel, Report, ReportKind};

use crate::{Diagnostic, Severity, Sources};

#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    pub color: bool,
}

/// Renders one diagnostic as text (no trailing blank line).
pub fn render_text(sources: &Sources, diag: &Diagnostic, opts: RenderOptions) -> String {
    let kind = match diag.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let Some(primary) = diag.primary_label() else {
        return render_plain(diag);
    };
    let path_of = |l: &crate::Label| sources.get(l.file).map_or_else(String::new, |f| f.path.clone());
    let range_of = |l: &crate::Label| -> Range<usize> {
        let len = sources.get(l.file).map_or(0, |f| f.text.len());
        clamp_range(l.span.range(), len)
    };
    let mut report = Report::build(kind, (path_of(primary), range_of(primary)))
        .with_config(
            Config::default().with_color(opts.color).with_index_type(IndexType::Byte).with_compact(false),
        )
        .with_code(diag.code.as_str())
        .with_message(&diag.message);
    for label in &diag.labels {
        let color = if label.primary { Color::Red } else { Color::Blue };
        let mut l = ALabel::new((path_of(label), range_of(label)))
            .with_message(&label.message)
            .with_order(if label.primary { 0 } else { 1 });
        if opts.color {
            l = l.with_color(color);
        }
        report = report.with_label(l);
    }
    if let Some(help) = &diag.help {
        report = report.with_help(help);
    }
    for note in &diag.notes {
        report = report.with_note(note);
    }
    let report = report.finish();
    // Only the files the labels point into are handed to ariadne, each cut into lines once.
    let mut files = Cut(Vec::new());
    for label in &diag.labels {
        if let Some(f) = sources.get(label.file)
            && !files.0.iter().any(|(p, _)| *p == f.path)
        {
            files.0.push((f.path.clone(), f.rendered()));
        }
    }
    let mut out = Vec::new();
    if report.write(files, &mut out).is_err() {
        return render_plain(diag);
    }
    let text = String::from_utf8_lossy(&out).trim_end().to_owned();
    fix_group_headers(sources, diag, &text)
}

/// The files a diagnostic points into, by path, as ariadne reads them.
struct Cut<'a>(Vec<(String, &'a ariadne::Source<Arc<str>>)>);

impl ariadne::Cache<String> for Cut<'_> {
    type Storage = Arc<str>;

    fn fetch(&mut self, id: &String) -> Result<&ariadne::Source<Arc<str>>, impl std::fmt::Debug> {
        self.0.iter().find(|(path, _)| path == id).map(|(_, source)| *source).ok_or("no such file")
    }

    fn display<'b>(&self, id: &'b String) -> Option<impl std::fmt::Display + 'b> {
        Some(id)
    }
}

/// Ariadne heads every group of lines after the first with the primary label's location, even
/// when the group shows a secondary label elsewhere in the file. Each such header is rewritten
/// to the location of the first label on the first line the group shows.
fn fix_group_headers(sources: &Sources, diag: &Diagnostic, text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let Some(open) = line.find("├─[ ") else {
            out.push((*line).to_string());
            continue;
        };
        let Some(close) = line.rfind(" ]") else {
            out.push((*line).to_string());
            continue;
        };
        let inner = &line[open + "├─[ ".len()..close];
        // `path:line:col`; the path itself may hold colons.
        let mut parts = inner.rsplitn(3, ':');
        let (_col, _line, path) = (parts.next(), parts.next(), parts.next());
        let Some(path) = path else {
            out.push((*line).to_string());
            continue;
        };
        // The first source line the group shows: ` 12 │ …`.
        let shown = lines[i + 1..].iter().take_while(|l| !l.contains("─[ ")).find_map(|l| {
            let (num, rest) = l.trim_start().split_once(' ')?;
            (rest.starts_with('│') || rest.starts_with('┆')).then_some(())?;
            num.parse::<u32>().ok()
        });
        let located = shown.and_then(|n| {
            diag.labels
                .iter()
                .filter_map(|l| {
                    let f = sources.get(l.file)?;
                    if f.path != path {
                        return None;
                    }
                    let lc = f.lines.line_col_chars(l.span.start);
                    (lc.line + 1 == n).then_some(lc.col + 1)
                })
                .min()
                .map(|col| (n, col))
        });
        match located {
            Some((n, col)) => {
                out.push(format!("{}├─[ {path}:{n}:{col} ]{}", &line[..open], &line[close + 2..]))
            }
            None => out.push((*line).to_string()),
        }
    }
    out.join("\n")
}

/// Ariadne needs ranges inside the text; an empty range at the very end is widened backwards.
fn clamp_range(r: Range<usize>, len: usize) -> Range<usize> {
    let start = r.start.min(len);
    let end = r.end.min(len).max(start);
    if start == end {
        if end < len {
            return start..end + 1;
        }
        if start > 0 {
            return start - 1..end;
        }
    }
    start..end
}

fn render_plain(diag: &Diagnostic) -> String {
    let mut s = format!("[{}] {}: {}", diag.code.as_str(), diag.severity.as_str(), diag.message);
    if let Some(help) = &diag.help {
        s.push_str(&format!("\n  help: {help}"));
    }
    for note in &diag.notes {
        s.push_str(&format!("\n  note: {note}"));
    }
    s
}
