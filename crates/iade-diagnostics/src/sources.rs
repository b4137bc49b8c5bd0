use std::sync::Arc;

use iade_span::{FileId, LineIndex};

/// A source text with the path it is shown under. The text is held once: its line index and
/// the human renderer's lines share it (a large stack's file is megabytes).
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: String,
    pub text: Arc<str>,
    pub lines: LineIndex,
    /// The text as the human renderer reads it, cut into lines once for all the diagnostics
    /// that point into the file: cutting it per diagnostic made a thousand diagnostics in a
    /// large file take seconds.
    pub(crate) rendered: std::sync::OnceLock<ariadne::Source<Arc<str>>>,
}

impl SourceFile {
    pub(crate) fn rendered(&self) -> &ariadne::Source<Arc<str>> {
        self.rendered.get_or_init(|| ariadne::Source::from(self.text.clone()))
    }
}

/// The set of files diagnostics may point into, indexed by `FileId`.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, path: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        let text = text.into();
        let lines = LineIndex::shared(text.clone());
        self.files.push(SourceFile { path: path.into(), text, lines, rendered: std::sync::OnceLock::new() });
        FileId(self.files.len() as u32 - 1)
    }

    /// The id the next `add` will return (so text can be parsed under its final id).
    pub fn next_id(&self) -> FileId {
        FileId(self.files.len() as u32)
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(i as u32), f))
    }
}
