//! The local provider against random file types and names: every observation ends (a FIFO
//! never blocks), a change never goes through a link, a sweep lists only what it should, and
//! nothing panics.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use iade_intent::Value;
use iade_provider::{Context, Observed, Provider, ProviderError, Secrets, Target};
use iade_provider_local::LocalProvider;

struct NoSecrets;

impl Secrets for NoSecrets {
    fn resolve(&self, name: &str) -> Result<String, ProviderError> {
        Err(ProviderError::permanent(format!("no secret {name}")))
    }
}

/// A small seeded generator, so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn name(rng: &mut Rng, i: usize) -> String {
    const PIECES: &[&str] =
        &["a", "Z", " ", "\n", "\u{1b}[2J", "é", "日本", ".", "-", "_", "\t", ".iade-tmp.", "%", "$", "'"];
    let mut out = format!("{i}");
    for _ in 0..rng.next(8) {
        out.push_str(PIECES[rng.next(PIECES.len() as u64) as usize]);
    }
    out
}

fn target(path: &Path) -> Target {
    let identity = BTreeMap::from([("path".to_string(), Value::str(path.to_string_lossy().as_ref()))]);
    let mut intended = identity.clone();
    intended.insert("mode".into(), Value::Mode(0o600));
    Target {
        id: "file.x".into(),
        kind: "file".into(),
        instance: None,
        identity: identity.into(),
        intended: intended.into(),
    }
}

fn context<'a>(stack_dir: &'a Path, cancelled: &'a AtomicBool) -> Context<'a> {
    Context { stack: "test", secrets: &NoSecrets, stack_dir, cancelled, diffs: true, state_dir: None }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0)
}

#[test]
fn random_file_types_and_names_never_hang_redirect_or_panic_the_local_provider() {
    let mut rng = Rng(0x5eed_1ade_2026_0001);
    let root = tempfile::tempdir().expect("temp dir");
    let victim = root.path().join("victim");
    std::fs::write(&victim, "keep me").expect("victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let dir = root.path().join("tree");
    std::fs::create_dir(&dir).expect("tree");
    let cancelled = AtomicBool::new(false);
    let cx = context(root.path(), &cancelled);
    let provider = LocalProvider::new();
    for i in 0..300 {
        let path = dir.join(name(&mut rng, i));
        let made = match rng.next(5) {
            0 => std::fs::write(&path, "content").is_ok(),
            1 => std::fs::create_dir(&path).is_ok(),
            2 => std::os::unix::fs::symlink(&victim, &path).is_ok(),
            3 => std::process::Command::new("mkfifo").arg(&path).status().is_ok_and(|s| s.success()),
            _ => std::os::unix::fs::symlink(&dir, &path).is_ok(),
        };
        if !made {
            continue;
        }
        let t = target(&path);
        let started = Instant::now();
        let observed = provider.observe("file", &[&t], &cx).pop().expect("one result");
        assert!(started.elapsed() < Duration::from_secs(5), "observing {path:?} blocked");
        if let Ok(obs) = &observed {
            let changes = provider.diff("file", &t, obs, &cx);
            if !changes.is_empty() && matches!(obs, Observed::Present(_)) {
                let applied = provider.apply("file", &t, obs, &cx);
                let flushed = provider.flush(&cx);
                if applied.is_ok() && flushed.is_ok_and(|f| f.is_empty()) {
                    assert_eq!(mode(&path), 0o600, "{path:?}");
                }
            }
        }
        assert_eq!(mode(&victim), 0o644, "a change went through {path:?}");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep me");
    }
    let found = provider.discover("file", &dir.to_string_lossy(), &cx).expect("the sweep ends");
    for d in &found {
        let Some(Value::Str(p)) = d.fields.get("path") else { panic!("a discovered file has a path") };
        let meta = std::fs::symlink_metadata(p.as_ref()).expect("exists");
        assert!(meta.file_type().is_file(), "a sweep of files listed {p:?}");
        assert!(!p.contains(".iade-tmp."), "a temporary file was listed: {p:?}");
    }
}

fn file_with_content(path: &Path, content: &str) -> Target {
    let mut t = target(path);
    t.id = format!("file.{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let mut intended = t.intended.clone();
    intended.insert("content".into(), Value::str(content));
    t.intended = intended;
    t
}

#[test]
fn a_wave_of_a_hundred_new_files_publishes_each_and_refuses_one_made_behind_its_back() {
    let root = tempfile::tempdir().expect("temp dir");
    let cancelled = AtomicBool::new(false);
    let cx = context(root.path(), &cancelled);
    for d in 0..3 {
        std::fs::create_dir(root.path().join(format!("d{d}"))).expect("dir");
    }
    let targets: Vec<Target> = (0..101)
        .map(|i| file_with_content(&root.path().join(format!("d{}/f{i}", i % 3)), &format!("file {i}\n")))
        .collect();
    let provider = LocalProvider::new();
    let refs: Vec<&Target> = targets.iter().collect();
    let observed = provider.observe("file", &refs, &cx);
    for (t, o) in targets.iter().zip(&observed) {
        let o = o.as_ref().expect("observed");
        assert!(matches!(o, Observed::Absent));
        provider.apply("file", t, o, &cx).expect("applied");
    }
    // Someone else creates the last file between the observation and the flush.
    let intruder = root.path().join("d1/f100");
    std::fs::write(&intruder, "not iade's").expect("intruder");
    let failures = provider.flush(&cx).expect("flushed");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, "file.f100");
    assert_eq!(std::fs::read_to_string(&intruder).expect("kept"), "not iade's");
    for i in 0..100 {
        let p = root.path().join(format!("d{}/f{i}", i % 3));
        assert_eq!(std::fs::read_to_string(&p).expect("published"), format!("file {i}\n"), "{p:?}");
        assert_eq!(mode(&p), 0o600, "{p:?}");
    }
    for d in 0..3 {
        for entry in std::fs::read_dir(root.path().join(format!("d{d}"))).expect("list") {
            let name = entry.expect("entry").file_name();
            assert!(!name.to_string_lossy().contains(".iade-tmp."), "left behind: {name:?}");
        }
    }
}

#[test]
fn modes_repaired_in_place_keep_each_file_in_a_large_wave_and_in_a_small_one() {
    use std::os::unix::fs::MetadataExt;
    let root = tempfile::tempdir().expect("temp dir");
    let cancelled = AtomicBool::new(false);
    let cx = context(root.path(), &cancelled);
    let targets: Vec<Target> = (0..70)
        .map(|i| file_with_content(&root.path().join(format!("f{i}")), &format!("file {i}\n")))
        .collect();
    let provider = LocalProvider::new();
    let refs: Vec<&Target> = targets.iter().collect();
    let wave = |refs: &[&Target]| {
        for (t, o) in refs.iter().zip(provider.observe("file", refs, &cx)) {
            provider.apply("file", t, &o.expect("observed"), &cx).expect("applied");
        }
        let failures = provider.flush(&cx).expect("flushed");
        assert!(failures.is_empty(), "{failures:?}");
    };
    wave(&refs);
    // 70 files is a large wave (one sync of the file system); 3 is a small one (each file).
    for n in [70, 3] {
        let inodes: Vec<u64> = (0..n)
            .map(|i| {
                let p = root.path().join(format!("f{i}"));
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).expect("chmod");
                std::fs::metadata(&p).expect("stat").ino()
            })
            .collect();
        wave(&refs[..n]);
        for (i, ino) in inodes.iter().enumerate() {
            let p = root.path().join(format!("f{i}"));
            assert_eq!(mode(&p), 0o600, "{p:?}");
            assert_eq!(std::fs::metadata(&p).expect("stat").ino(), *ino, "{p:?} was replaced, not repaired");
            assert_eq!(std::fs::read_to_string(&p).expect("read"), format!("file {i}\n"));
        }
    }
}
