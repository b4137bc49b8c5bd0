//! Source positions: file ids, byte ranges and line indexes.
//!
//! Every layer of iade speaks in byte offsets (`u32`); this crate converts them to the
//! line/column pairs humans read and to the UTF-16 positions the language server speaks.
//! It must never depend on any other iade crate.

use std::fmt;
use std::sync::Arc;

/// Identifies one source file within a compilation.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct FileId(pub u32);

/// A half-open byte range `start..end` into a source text.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub const fn new(start: u32, end: u32) -> Self {
        Self { start, end }
    }

    /// An empty span at `offset`.
    pub const fn empty(offset: u32) -> Self {
        Self { start: offset, end: offset }
    }

    pub const fn len(self) -> u32 {
        self.end - self.start
    }

    pub const fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The smallest span covering both.
    pub fn cover(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Moves the span by `delta` bytes (positive: later in the file).
    pub fn shift(self, delta: i64) -> Span {
        let move_one = |x: u32| (i64::from(x) + delta).clamp(0, i64::from(u32::MAX)) as u32;
        Span::new(move_one(self.start), move_one(self.end))
    }

    /// This span, re-expressed relative to `base` (which must not lie after `self.start`).
    pub fn relative_to(self, base: u32) -> Span {
        Span::new(self.start.saturating_sub(base), self.end.saturating_sub(base))
    }

    /// This relative span, made absolute again by adding `base`.
    pub fn absolute_from(self, base: u32) -> Span {
        Span::new(self.start.saturating_add(base), self.end.saturating_add(base))
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn contains(self, offset: u32) -> bool {
        self.start <= offset && offset < self.end
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Self {
        let clamp = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        Span::new(clamp(r.start), clamp(r.end))
    }
}

/// A zero-based line and column. `col` counts bytes or UTF-16 units depending on the method
/// that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}

/// Maps byte offsets of one text to line/column positions and back.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineIndex {
    /// Byte offset at which each line starts; `line_starts[0] == 0`.
    line_starts: Vec<u32>,
    /// The text, shared with whoever holds it (a large stack's file is megabytes).
    text: Arc<str>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        Self::shared(Arc::from(text))
    }

    /// The index of a text held elsewhere too, without copying it.
    pub fn shared(text: Arc<str>) -> Self {
        let newlines = || memchr::memchr_iter(b'\n', text.as_bytes());
        let mut line_starts = Vec::with_capacity(newlines().count() + 1);
        line_starts.push(0);
        line_starts.extend(newlines().map(|i| u32::try_from(i + 1).unwrap_or(u32::MAX)));
        Self { line_starts, text }
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Line and byte column of `offset` (clamped to the text).
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(self.text.len() as u32);
        let line = match self.line_starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l - 1,
        };
        LineCol { line: line as u32, col: offset - self.line_starts[line] }
    }

    /// Line and UTF-16 column of `offset`, as the language server protocol counts.
    pub fn line_col_utf16(&self, offset: u32) -> LineCol {
        let lc = self.line_col(offset);
        let start = self.line_starts[lc.line as usize] as usize;
        let end = start + lc.col as usize;
        let col = self.text.get(start..end).map_or(lc.col as usize, |s| s.encode_utf16().count());
        LineCol { line: lc.line, col: col as u32 }
    }

    /// Line and column counted in Unicode scalar values (what a terminal shows), one-based for
    /// humans is the caller's business.
    pub fn line_col_chars(&self, offset: u32) -> LineCol {
        let lc = self.line_col(offset);
        let start = self.line_starts[lc.line as usize] as usize;
        let end = start + lc.col as usize;
        let col = self.text.get(start..end).map_or(lc.col as usize, |s| s.chars().count());
        LineCol { line: lc.line, col: col as u32 }
    }

    /// Byte offset of a UTF-16 line/column position (clamped to the line).
    pub fn offset_utf16(&self, pos: LineCol) -> u32 {
        let Some(&start) = self.line_starts.get(pos.line as usize) else {
            return self.text.len() as u32;
        };
        let line_end = self.line_starts.get(pos.line as usize + 1).map_or(self.text.len(), |&e| e as usize);
        let line = &self.text[start as usize..line_end];
        let mut units = 0u32;
        for (i, c) in line.char_indices() {
            if units >= pos.col || c == '\n' {
                return start + i as u32;
            }
            units += c.len_utf16() as u32;
        }
        line_end as u32
    }

    /// Byte offset at which `line` starts.
    pub fn line_start(&self, line: u32) -> Option<u32> {
        self.line_starts.get(line as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_utf16_units_for_astral_characters() {
        let idx = LineIndex::new("a\n😀b\n");
        assert_eq!(idx.line_col(2), LineCol { line: 1, col: 0 });
        assert_eq!(idx.line_col(6), LineCol { line: 1, col: 4 });
        assert_eq!(idx.line_col_utf16(6), LineCol { line: 1, col: 2 });
        assert_eq!(idx.offset_utf16(LineCol { line: 1, col: 2 }), 6);
        assert_eq!(idx.line_col_chars(6), LineCol { line: 1, col: 1 });
    }

    #[test]
    fn an_index_of_a_shared_text_answers_as_one_of_its_copy() {
        let text = "a\r\nbé\n\nc😀d";
        let (copied, shared) = (LineIndex::new(text), LineIndex::shared(Arc::from(text)));
        assert_eq!(copied, shared);
        assert_eq!(shared.line_count(), 4);
        for offset in 0..=text.len() as u32 {
            assert_eq!(copied.line_col_chars(offset), shared.line_col_chars(offset));
        }
        assert_eq!(shared.line_col(4), LineCol { line: 1, col: 1 });
    }

    #[test]
    fn offsets_past_the_end_are_clamped() {
        let idx = LineIndex::new("ab");
        assert_eq!(idx.line_col(99), LineCol { line: 0, col: 2 });
        assert_eq!(idx.offset_utf16(LineCol { line: 7, col: 0 }), 2);
    }

    #[test]
    fn relative_spans_round_trip() {
        let s = Span::new(10, 14);
        assert_eq!(s.relative_to(8).absolute_from(8), s);
    }
}
