//! Unified diffs of text content for plans, bounded like `puppet --show_diff`.

use std::io::Read;
use std::path::Path;

use iade_provider::Observed;

/// Files larger than this are not diffed (the plan shows sizes and digests instead).
const MAX_BYTES: u64 = 256 * 1024;
/// At most this many lines of diff are shown; the rest is counted.
const MAX_LINES: usize = 200;

/// The unified diff from the file's current content to `new`, when both are text and the file
/// is small enough; `None` otherwise.
pub fn content_diff(path: &Path, observed: &Observed, new: &str) -> Option<String> {
    let old = match observed {
        Observed::Absent => String::new(),
        Observed::Present(_) => read_text(path)?,
    };
    if new.len() as u64 > MAX_BYTES || new.contains('\0') {
        return None;
    }
    Some(unified(&old, new, &path.display().to_string()))
}

/// The file's text, read through its safely opened parent, never following a link or waiting
/// on a FIFO.
fn read_text(path: &Path) -> Option<String> {
    let parent = crate::safe::parent(path).ok()??;
    let fd = parent.open(path, rustix::fs::FileType::RegularFile, None).ok()?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd).take(MAX_BYTES + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > MAX_BYTES || bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// `--- PATH (now)` / `+++ PATH (intended)` hunks with three lines of context, cut at [`MAX_LINES`].
pub fn unified(old: &str, new: &str, name: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (now)"), &format!("{name} (intended)"))
        .to_string();
    let total = text.lines().count();
    if total <= MAX_LINES {
        return text;
    }
    let mut out: String = text.lines().take(MAX_LINES).map(|l| format!("{l}\n")).collect();
    out.push_str(&format!("… {} more lines of diff\n", total - MAX_LINES));
    out
}
