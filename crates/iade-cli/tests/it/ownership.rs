//! Ownership on real files: marks, adoption, two stacks on one path, orphans and `--prune`,
//! `purge` and `protect`.

use std::path::{Path, PathBuf};

use super::engine::{TempDir, code, run, text};

const MARK: &str = "user.iade.stack";

fn mark(p: &Path) -> Option<String> {
    let mut buf = [0u8; 256];
    match rustix::fs::lgetxattr(p, MARK, &mut buf[..]) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

fn unmark(p: &Path) {
    rustix::fs::lremovexattr(p, MARK).expect("the mark can be removed");
}

/// A directory for a test with two stacks and the tree they manage.
fn sandbox(name: &str) -> TempDir {
    let d = TempDir::new(&format!("own-{name}"));
    std::fs::create_dir_all(d.join("tree")).expect("temp dir");
    d
}

fn write_stack(dir: &Path, stack: &str, source: &str) -> PathBuf {
    let s = dir.join(stack);
    std::fs::create_dir_all(&s).expect("stack dir");
    std::fs::write(s.join("main.iade"), source).expect("source");
    s
}

fn files(tree: &Path, names: &[&str]) -> String {
    let mut src = String::from("use std.fs.{file}\n");
    for n in names {
        src.push_str(&format!("file {n} {{ path = \"{}/{n}\"  content = \"{n}\\n\" }}\n", tree.display()));
    }
    src
}

#[test]
fn converge_marks_what_it_writes_and_a_hand_made_file_is_never_pruned() {
    let dir = sandbox("prune");
    let tree = dir.join("tree");
    std::fs::write(tree.join("hand-made"), "mine\n").expect("hand-made file");
    let s = write_stack(&dir, "web", &files(&tree, &["a", "b", "c"]));
    let o = run(&s, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(mark(&tree.join("a")).as_deref(), Some("web"));
    assert_eq!(mark(&tree.join("hand-made")), None);

    // `b` and `c` leave the source: listed, kept without --prune.
    std::fs::write(s.join("main.iade"), files(&tree, &["a"])).expect("source");
    let o = run(&s, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "orphans kept are not pending:\n{}", text(&o));
    assert!(text(&o).contains("file.b") && text(&o).contains("its mark proves it"), "{}", text(&o));
    let o = run(&s, &["plan", "--prune"], &[]);
    assert_eq!(code(&o), Some(2), "with --prune they are pending:\n{}", text(&o));
    let o = run(&s, &["converge", "--prune"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(!tree.join("b").exists() && !tree.join("c").exists());
    assert!(tree.join("a").exists());
    assert_eq!(std::fs::read_to_string(tree.join("hand-made")).expect("kept"), "mine\n");
    let o = run(&s, &["plan", "--prune"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_whose_mark_was_removed_or_lost_to_a_renaming_editor_is_adopted_again() {
    let dir = sandbox("adopt");
    let tree = dir.join("tree");
    let s = write_stack(&dir, "web", &files(&tree, &["a", "b"]));
    assert_eq!(code(&run(&s, &["converge"], &[])), Some(0));
    // The mark removed by hand; the other file replaced the way editors save (same content,
    // a new inode without the attribute).
    unmark(&tree.join("a"));
    std::fs::write(tree.join(".b.swp"), "b\n").expect("editor buffer");
    std::fs::rename(tree.join(".b.swp"), tree.join("b")).expect("editor save");
    assert_eq!(mark(&tree.join("b")), None);
    let o = run(&s, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "adoption is not drift:\n{}", text(&o));
    assert!(text(&o).contains("2 to mark as this stack's"), "{}", text(&o));
    let o = run(&s, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(mark(&tree.join("a")).as_deref(), Some("web"));
    assert_eq!(mark(&tree.join("b")).as_deref(), Some("web"));
    assert!(text(&o).contains("0 changed"), "marking is not a change:\n{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_stacks_on_one_path_never_flip_it_and_the_error_names_the_owner() {
    let dir = sandbox("two");
    let tree = dir.join("tree");
    let web = write_stack(&dir, "web", &files(&tree, &["shared"]));
    let other = format!(
        "use std.fs.{{file}}\nfile shared {{ path = \"{}/shared\"  content = \"theirs\\n\" }}\n",
        tree.display()
    );
    let ops = write_stack(&dir, "ops", &other);
    assert_eq!(code(&run(&web, &["converge"], &[])), Some(0));
    for _ in 0..2 {
        let o = run(&ops, &["converge"], &[]);
        assert_eq!(code(&o), Some(1), "{}", text(&o));
        assert!(text(&o).contains("belongs to stack `web`"), "{}", text(&o));
        assert_eq!(std::fs::read_to_string(tree.join("shared")).expect("kept"), "shared\n");
        assert_eq!(code(&run(&web, &["converge"], &[])), Some(0), "web's runs see no drift");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_protected_resource_removed_from_the_source_makes_plan_fail() {
    let dir = sandbox("protect");
    let tree = dir.join("tree");
    let src = format!(
        "use std.fs.{{file}}\nfile keep {{ path = \"{}/keep\"  content = \"k\\n\"  protect = true }}\n",
        tree.display()
    );
    let s = write_stack(&dir, "web", &src);
    assert_eq!(code(&run(&s, &["converge"], &[])), Some(0));
    std::fs::write(s.join("main.iade"), "use std.fs.{file}\n").expect("source");
    for args in [&["plan"][..], &["plan", "--prune"], &["converge", "--prune"]] {
        let o = run(&s, args, &[]);
        assert_eq!(code(&o), Some(1), "{args:?}:\n{}", text(&o));
        assert!(text(&o).contains("protected"), "{args:?}:\n{}", text(&o));
        assert!(tree.join("keep").exists(), "{args:?} deleted a protected file");
    }
    // `ensure = absent` on a protected resource is refused the same way.
    let absent = format!(
        "use std.fs.{{file}}\nfile keep {{ path = \"{}/keep\"  ensure = absent  protect = true }}\n",
        tree.display()
    );
    std::fs::write(s.join("main.iade"), absent).expect("source");
    let o = run(&s, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(tree.join("keep").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn purge_removes_undeclared_entries_but_not_another_stacks() {
    let dir = sandbox("purge");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("old/deeper")).expect("dirs");
    std::fs::write(tree.join("old/deeper/x"), "x").expect("stray file");
    std::fs::write(tree.join("stray"), "s").expect("stray file");
    std::os::unix::fs::symlink("stray", tree.join("link")).expect("stray link");
    let theirs = format!(
        "use std.fs.{{file}}\nfile t {{ path = \"{}/theirs\"  content = \"t\\n\" }}\n",
        tree.display()
    );
    let ops = write_stack(&dir, "ops", &theirs);
    assert_eq!(code(&run(&ops, &["converge"], &[])), Some(0));
    let src = format!(
        "use std.fs.{{file, directory}}\ndirectory tree {{ path = \"{0}\"  purge = true }}\nfile a {{ path = \"{0}/a\"  content = \"a\\n\" }}\n",
        tree.display()
    );
    let web = write_stack(&dir, "web", &src);
    let o = run(&web, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    let out = text(&o);
    let first = out.lines().next().unwrap_or_default();
    assert!(first.contains("purge = true"), "purges are listed first:\n{out}");
    assert!(!out.contains("theirs"), "another stack's file is not a purge candidate:\n{out}");
    let o = run(&web, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let mut left: Vec<String> = std::fs::read_dir(&tree)
        .expect("tree")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a", "theirs"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_symlink_is_owned_through_the_journal_and_output_says_so() {
    let dir = sandbox("link");
    let tree = dir.join("tree");
    let src = format!(
        "use std.fs.{{symlink}}\nsymlink l {{ path = \"{}/l\"  target = \"nowhere\" }}\n",
        tree.display()
    );
    let s = write_stack(&dir, "web", &src);
    assert_eq!(code(&run(&s, &["converge"], &[])), Some(0));
    std::fs::write(s.join("main.iade"), "use std.fs.{symlink}\n").expect("source");
    let o = run(&s, &["plan"], &[]);
    assert!(text(&o).contains("the journal proves it"), "{}", text(&o));
    assert_eq!(code(&run(&s, &["converge", "--prune"], &[])), Some(0));
    assert!(std::fs::symlink_metadata(tree.join("l")).is_err(), "the link is pruned");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_directories_with_one_stack_name_are_one_stack_on_a_host() {
    let dir = sandbox("same-name");
    let tree = dir.join("tree");
    let src = |f: &str| {
        format!(
            "use std.fs.{{file}}\nstack shared {{}}\nfile {f} {{ path = \"{}/{f}\"  content = \"x\\n\" }}\n",
            tree.display()
        )
    };
    let one = write_stack(&dir, "one", &src("a"));
    let two = write_stack(&dir, "two", &src("b"));
    let mut watcher = std::process::Command::new(super::engine::iade_bin())
        .args(["converge", "--watch", "--interval", "1h"])
        .current_dir(&one)
        .env("IADE_LOCK_DIR", dir.join(".iade-locks"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watcher starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !tree.join("a").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = run(&two, &["converge"], &[]);
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert_eq!(code(&o), Some(3), "the name is held from the other directory:\n{}", text(&o));
    assert!(text(&o).contains("from ") && text(&o).contains("one"), "the holder is named:\n{}", text(&o));
    assert!(!tree.join("b").exists());
    let o = run(&two, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "free again once the first engine is gone:\n{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
