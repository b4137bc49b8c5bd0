//! The provider contract: how the engine observes, changes and discovers objects in the
//! environment, one kind family per provider. Also an in-memory provider for engine tests.
//!
//! A provider never decides *whether* to change something: the engine diffs intent against a
//! fresh observation and asks for exactly the changes it journaled. Errors say whether trying
//! again may help ([`ErrorClass::Transient`]) or not.

mod memory;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use iade_intent::Value;
use iade_intent::eval::values_equal;

pub use memory::MemoryProvider;

/// A field name to value map, in a defined order.
pub type Fields = iade_intent::VecMap<String, Value>;

/// What an observation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    Absent,
    Present(Fields),
}

impl Observed {
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Observed::Present(f) => f.get(name),
            Observed::Absent => None,
        }
    }
}

/// One managed object: its resource id, kind, identity and intended (managed) attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub kind: String,
    /// The provider instance the resource chooses (`provider = NAME`); `None`: the provider
    /// type's only (or default) instance.
    pub instance: Option<String>,
    pub identity: Fields,
    /// Managed attributes, identity included.
    pub intended: Fields,
}

impl Target {
    /// Whether the intent is that the object exists (`ensure` other than `absent`).
    pub fn wants_present(&self) -> bool {
        !matches!(self.intended.get("ensure"), Some(Value::Enum(e)) if e.as_ref() == "absent")
    }

    /// An identity field as text (a file's path), if it is a plain string.
    pub fn identity_str(&self, name: &str) -> Option<&str> {
        match self.identity.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Trying again may succeed (a busy resource, a timeout, a lost connection).
    Transient,
    /// Trying again will fail the same way until something changes.
    Permanent,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub class: ErrorClass,
    pub message: String,
    /// What the failing command printed, when one ran (secrets scrubbed).
    pub output: Option<Output>,
}

/// The end of what a command printed, secrets scrubbed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// What an `apply` or `delete` reports besides success.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// What the command that made the change printed, when one ran.
    pub output: Option<Output>,
}

/// How a change to an object is named in plans and the journal. The provider chooses it; the
/// engine knows no kind by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Create,
    Update,
    Delete,
    /// A command runs to make the object right (an `exec`'s `apply`).
    Run,
}

/// An object found by [`Provider::discover`]: how to name it (`/etc/passwd` → the subject
/// `file[/etc/passwd]`), its identity, and every field observed (identity included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    pub name: String,
    pub identity: Fields,
    pub fields: Fields,
}

impl ProviderError {
    pub fn transient(message: impl Into<String>) -> Self {
        ProviderError { class: ErrorClass::Transient, message: message.into(), output: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        ProviderError { class: ErrorClass::Permanent, message: message.into(), output: None }
    }

    pub fn with_output(mut self, output: Output) -> Self {
        self.output = Some(output);
        self
    }

    /// Classifies an I/O error: interruptions and timeouts are transient, the rest permanent.
    pub fn io(what: impl std::fmt::Display, e: &std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let class = match e.kind() {
            Interrupted | TimedOut | WouldBlock | ResourceBusy | StorageFull => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        };
        ProviderError { class, message: format!("{what}: {e}"), output: None }
    }
}

/// One attribute that differs: what was observed and what is intended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub field: String,
    /// `None` when the object is absent or the field could not be observed.
    pub observed: Option<Value>,
    pub intended: Value,
    /// How to show the two sides when the values themselves are not shown (file contents:
    /// size and digest; an exec: its exit code): `(observed, intended)`.
    pub shown: Option<(Option<String>, String)>,
    /// Why the field could not be compared (a secret that is not set), when it could not. Such
    /// a field is reported, never applied: the rest of the object is still corrected.
    pub unknown: Option<String>,
    /// A unified diff of text content, when the context asks for diffs and neither side is
    /// secret.
    pub diff: Option<String>,
}

impl Change {
    /// A field whose value differs.
    pub fn new(field: impl Into<String>, observed: Option<Value>, intended: Value) -> Change {
        Change { field: field.into(), observed, intended, shown: None, unknown: None, diff: None }
    }

    pub fn shown(mut self, observed: Option<String>, intended: impl Into<String>) -> Change {
        self.shown = Some((observed, intended.into()));
        self
    }

    /// A field that cannot be compared, and why.
    pub fn unknown(field: impl Into<String>, intended: Value, why: impl Into<String>) -> Change {
        Change { unknown: Some(why.into()), ..Change::new(field, None, intended) }
    }
}

/// Resolves secrets, only ever inside a provider call.
pub trait Secrets: Send + Sync {
    fn resolve(&self, name: &str) -> Result<String, ProviderError>;
}

/// The text a value stands for, with secrets resolved: for a provider that writes it out.
pub fn reveal(value: &Value, secrets: &dyn Secrets) -> Result<String, ProviderError> {
    match value {
        Value::Secret(s) => {
            let mut out = String::new();
            for part in &s.parts {
                match part {
                    iade_intent::SecretPart::Text(t) | iade_intent::SecretPart::Hidden(t) => out.push_str(t),
                    iade_intent::SecretPart::Named(n) => out.push_str(&secrets.resolve(n)?),
                }
            }
            Ok(out)
        }
        Value::Unknown(u) => Err(ProviderError::permanent(format!("a value is not known: {}", u.reason))),
        other => other
            .as_text()
            .ok_or_else(|| ProviderError::permanent(format!("{} has no text form", other.type_name()))),
    }
}

/// Every piece of secret text `value` holds or reveals, longest first: the resolved named
/// secrets, the text of secret params, and each whole secret value; for scrubbing what a
/// command prints. Text around a secret (`"postgres://app:"`) is not secret by itself.
pub fn secret_texts(values: &[&Value], secrets: &dyn Secrets) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stack: Vec<&Value> = values.to_vec();
    while let Some(v) = stack.pop() {
        match v {
            Value::Secret(s) => {
                for part in &s.parts {
                    match part {
                        iade_intent::SecretPart::Named(n) => out.extend(secrets.resolve(n).ok()),
                        iade_intent::SecretPart::Hidden(t) => out.push(t.clone()),
                        iade_intent::SecretPart::Text(_) => {}
                    }
                }
                out.extend(reveal(v, secrets).ok());
            }
            Value::List(items) => stack.extend(items.iter()),
            Value::Record(entries) => stack.extend(entries.values()),
            _ => {}
        }
    }
    out.retain(|s| !s.is_empty());
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every one of `secrets` replaced by `<redacted>` (longest first, so a secret
/// that contains another goes whole).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "<redacted>");
        }
    }
    out
}

/// Who owns an object, as its ownership mark says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mark {
    /// The object cannot carry a mark (a symlink, a file system without extended attributes),
    /// or is absent: the journal's record of what the stack applied proves ownership instead.
    Unsupported,
    /// It can carry a mark and carries none.
    Unmarked,
    /// The stack its mark names.
    Stack(String),
}

/// The name of the extended attribute that marks a file or directory with its stack.
pub const MARK_XATTR: &str = "user.iade.stack";

/// What a provider call may use besides its arguments.
pub struct Context<'a> {
    /// The name of the stack being run: what ownership marks this run writes say.
    pub stack: &'a str,
    pub secrets: &'a dyn Secrets,
    /// Relative paths in intent are relative to the stack directory.
    pub stack_dir: &'a Path,
    /// Set when the run is being cancelled: long operations should stop.
    pub cancelled: &'a std::sync::atomic::AtomicBool,
    /// Whether `diff` should compute text diffs of content (`plan`'s `--no-diff` turns it off).
    pub diffs: bool,
    /// A directory beside the journal where a provider may keep what a run must keep (backups
    /// of replaced files); `None` when nothing may be kept (a plan).
    pub state_dir: Option<&'a Path>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("stack_dir", &self.stack_dir).finish_non_exhaustive()
    }
}

/// A family of kinds the engine can observe and change.
pub trait Provider: Send + Sync {
    /// The provider type kinds bind to (`local`, `exec`).
    fn name(&self) -> &str;

    /// The stack's `provider TYPE NAME { … }` instances of this provider's type, by name, with
    /// their evaluated settings (secrets still secret). Called before every run.
    fn configure(&self, _instances: &BTreeMap<String, Fields>) {}

    /// Observes many objects of one kind in one call, one result per target, in order.
    fn observe(
        &self,
        kind: &str,
        targets: &[&Target],
        cx: &Context<'_>,
    ) -> Vec<Result<Observed, ProviderError>>;

    /// The managed attributes that differ. The default compares every intended field but
    /// the identity and `ensure`.
    fn diff(&self, _kind: &str, target: &Target, observed: &Observed, _cx: &Context<'_>) -> Vec<Change> {
        default_diff(target, observed)
    }

    /// What correcting a differing object does. The default: delete what should be absent,
    /// create what is absent, update the rest.
    fn verb(&self, _kind: &str, target: &Target, observed: &Observed) -> Verb {
        match (target.wants_present(), observed) {
            (false, _) => Verb::Delete,
            (true, Observed::Absent) => Verb::Create,
            (true, Observed::Present(_)) => Verb::Update,
        }
    }

    /// Makes the object match the intent (creating it if absent). Must be safe to repeat.
    /// Fields the engine could not compare are not in `target.intended`.
    fn apply(
        &self,
        kind: &str,
        target: &Target,
        observed: &Observed,
        cx: &Context<'_>,
    ) -> Result<Applied, ProviderError>;

    /// Removes the object. Must be safe to repeat.
    fn delete(&self, kind: &str, target: &Target, cx: &Context<'_>) -> Result<Applied, ProviderError>;

    /// Objects of a kind under a location (a path, for files), managed or not, for compliance
    /// sweeps.
    fn discover(&self, kind: &str, under: &str, cx: &Context<'_>) -> Result<Vec<Discovered>, ProviderError>;

    /// An identity in the form the environment knows it (a relative path made absolute), so
    /// that a discovered object and a resource that names it compare equal.
    fn canonical_identity(&self, _kind: &str, identity: &Fields, _cx: &Context<'_>) -> Fields {
        identity.clone()
    }

    /// Whether the object with this identity lies under `under` (for `intent(kind, under =
    /// …)`). A kind without locations lies everywhere.
    fn contains(&self, _kind: &str, _identity: &Fields, _under: &str, _cx: &Context<'_>) -> bool {
        true
    }

    /// Filesystem paths whose changes may mean the object drifted, for `--watch`.
    fn watch_paths(&self, _kind: &str, _target: &Target, _cx: &Context<'_>) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// Observed fields whose values derive from `field` (a file's `sha256` and `size` from its
    /// `content`): when the intended `field` is built from a secret, they are secret too.
    fn derived_fields(&self, _kind: &str, _field: &str) -> &'static [&'static str] {
        &[]
    }

    /// Whether a path is the provider's own transient artifact (a temporary file of an atomic
    /// write), whose changes a watcher ignores.
    fn is_artifact(&self, _path: &Path) -> bool {
        false
    }

    /// Makes the effects of every `apply` and `delete` since the last flush durable. The
    /// engine calls it once per wave, before it records those steps done, so a provider can
    /// share one sync among many changes (directory entries, for the local provider).
    ///
    /// Returns the targets whose change could not be completed, by resource id; an `Err`
    /// means none of the changes since the last flush can be trusted.
    fn flush(&self, _cx: &Context<'_>) -> Result<Vec<(String, ProviderError)>, ProviderError> {
        Ok(Vec::new())
    }

    /// Makes an object's current state durable (syncs it and its directory): for a step a
    /// crash interrupted whose effect is visible, before it is recorded done.
    fn make_durable(&self, _kind: &str, _target: &Target, _cx: &Context<'_>) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Whether resources of this kind are objects the stack owns (and may delete once the
    /// source no longer declares them). An `exec` names commands, not an object.
    fn owns_objects(&self, _kind: &str) -> bool {
        true
    }

    /// How many objects of a kind one `observe` call should take: small batches spread over
    /// threads (files), large ones save round trips to a server that answers a batch with one
    /// query.
    fn batch_size(&self, _kind: &str) -> usize {
        32
    }

    /// The ownership marks of objects, one per target, in order; the engine asks only for
    /// objects it observed present. The default: marks are not supported.
    fn marks(&self, _kind: &str, targets: &[&Target], _cx: &Context<'_>) -> Vec<Mark> {
        vec![Mark::Unsupported; targets.len()]
    }

    /// How a person removes an object's ownership mark by hand, said after "or" in the
    /// message that refuses an object another stack's mark claims.
    fn unmark_hint(&self, _kind: &str, target: &Target) -> String {
        let path = target.identity_str("path").unwrap_or("PATH");
        format!("remove the mark (setfattr -x {MARK_XATTR} {path})")
    }

    /// Marks an existing object as the run's stack's (adoption: nothing else about it
    /// differs). Every `apply` marks what it writes itself.
    fn set_mark(&self, _kind: &str, _target: &Target, _cx: &Context<'_>) -> Result<Applied, ProviderError> {
        Ok(Applied::default())
    }

    /// Runs the object's refresh action (a change it was notified of). Only kinds declared
    /// `refreshable` are asked.
    fn refresh(&self, kind: &str, _target: &Target, _cx: &Context<'_>) -> Result<Applied, ProviderError> {
        Err(ProviderError::permanent(format!("a {kind} cannot be refreshed")))
    }

    /// Objects under an object that asks for its contents to be purged (`directory { purge =
    /// true }`), as targets to delete, deepest first. The engine keeps those the stack
    /// declares and those another stack's mark claims.
    fn purge_candidates(
        &self,
        _kind: &str,
        _target: &Target,
        _cx: &Context<'_>,
    ) -> Result<Vec<Target>, ProviderError> {
        Ok(Vec::new())
    }

    /// Removes what an interrupted `apply` may have left behind (temporary files, commands
    /// still running), as the environment shows it, for these targets (by identity: their
    /// intended values are left empty). The engine calls it at the start of every run, so it
    /// must be cheap when there is nothing to remove.
    fn cleanup(&self, _kind: &str, _targets: &[&Target], _cx: &Context<'_>) -> Result<usize, ProviderError> {
        Ok(0)
    }
}

/// `path` made absolute against `base` (when relative) and normalized lexically, so
/// `./out/../x` and `x` name one path in comparisons and messages. Symlinks are not resolved:
/// the path is the one the intent names.
pub fn resolve_path(base: &Path, path: &Path) -> std::path::PathBuf {
    if is_normal(path) { path.to_path_buf() } else { lexically(base, path) }
}

/// [`resolve_path`] component by component.
fn lexically(base: &Path, path: &Path) -> std::path::PathBuf {
    let joined = if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
    let mut out = std::path::PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether a path is absolute and already in the form [`resolve_path`] gives: no `.` or `..`
/// component, no doubled or trailing `/` (the common case, answered without building a path).
fn is_normal(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let b = path.as_os_str().as_bytes();
    let Some(rest) = b.strip_prefix(b"/") else { return false };
    rest.is_empty() || rest.split(|c| *c == b'/').all(|seg| !matches!(seg, b"" | b"." | b".."))
}

/// The changes of an object with an `ensure` field: when it should be absent, only its removal
/// (if present); when it should exist, its creation (if absent) and then `fields`'s changes.
pub fn presence_diff(
    target: &Target,
    observed: &Observed,
    fields: impl FnOnce() -> Vec<Change>,
) -> Vec<Change> {
    let present = matches!(observed, Observed::Present(_));
    let word = |w: &str| Value::Enum(w.into());
    if !target.wants_present() {
        return if present {
            vec![Change::new("ensure", Some(word("present")), word("absent"))]
        } else {
            Vec::new()
        };
    }
    let mut out = Vec::new();
    if !present {
        out.push(Change::new("ensure", Some(word("absent")), word("present")));
    }
    out.extend(fields());
    out
}

/// A list of names as a set (memberships compare as sets: order and repeats do not matter);
/// `None` when it is not a list of strings.
pub fn name_set(v: &Value) -> Option<BTreeSet<String>> {
    match v {
        Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Compares each intended field (but identity and `ensure`) with its observed value.
pub fn default_diff(target: &Target, observed: &Observed) -> Vec<Change> {
    let mut out = Vec::new();
    for (field, intended) in &target.intended {
        if field == "ensure" || target.identity.contains_key(field) {
            continue;
        }
        let seen = observed.field(field);
        let same = match (seen, intended) {
            (Some(o), i) => values_equal(o, i),
            (None, _) => false,
        };
        if !same {
            out.push(Change::new(field.clone(), seen.cloned(), intended.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn a_path_already_normal_resolves_to_itself_and_every_path_as_component_by_component() {
        let base = Path::new("/srv/stack");
        for p in [
            "/",
            "/a",
            "/a/b.txt",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/a/b/",
            "/a/b/.",
            "/a/b/..",
            "/.",
            "/..",
            "a/b",
            "./a",
            "../a",
            "a/./b/../c",
            "",
            "/a/.hidden",
            "/a/..b",
            "/a/b..",
        ] {
            // As text: `Path` equality would not tell `/a//b` from `/a/b`, and messages show it.
            let (fast, slow) =
                (super::resolve_path(base, Path::new(p)), super::lexically(base, Path::new(p)));
            assert_eq!(fast.as_os_str(), slow.as_os_str(), "{p:?}");
        }
    }
}
