//! `iade import`: what it writes declares the objects exactly as they are, so a stack holding
//! it plans nothing (a round trip), for generated trees with odd names, modes, links, binary
//! content and nesting.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::engine::{code, run, text};

fn tree(root: &Path) {
    let names = [
        "plain",
        "with space",
        "quote\"d",
        "dollar${x}",
        "back\\slash",
        "ünï©ødé",
        "semi;colon",
        "new\nline",
    ];
    for d in 0..10 {
        let dir = root.join(format!("dir{d}")).join(format!("nested {d}"));
        std::fs::create_dir_all(&dir).expect("dirs");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750 + (d % 2) * 5)).expect("chmod");
        for f in 0..100 {
            let name = format!("{}-{f}", names[f % names.len()]);
            let path = dir.join(&name);
            match f % 10 {
                // Binary content.
                0 => std::fs::write(&path, [0u8, 159, 146, 150, f as u8]).expect("write"),
                // A link, relative, to a sibling that may not exist.
                1 => std::os::unix::fs::symlink(format!("../{name}.target"), &path).expect("link"),
                _ => std::fs::write(&path, format!("line {f}\n${{not interpolated}}\ttab \"q\"\n"))
                    .expect("write"),
            }
            if f % 10 != 1 {
                let mode = [0o644, 0o600, 0o640, 0o755, 0o4755][f % 5];
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            }
        }
    }
}

#[test]
fn an_imported_tree_of_a_thousand_objects_plans_nothing() {
    let base = std::env::temp_dir().join(format!("iade-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("tree");
    tree(&root);
    let stack = base.join("stack");
    let o = std::process::Command::new(super::engine::iade_bin())
        .args(["import", "file", "--recursive", "--out"])
        .arg(&stack)
        .arg(&root)
        .output()
        .expect("iade runs");
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("wrote"), "{}", text(&o));
    let source = std::fs::read_to_string(stack.join("imported.iade")).expect("imported");
    assert!(source.contains("source = \"files/"), "binary content is copied and named by source");
    assert!(source.contains("${directory."), "a file inside an imported directory refers to it");

    let o = run(&stack, &["check"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("1021 resources"), "{}", text(&o));
    let o = run(&stack, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "the round trip plans nothing to change: {}", text(&o));
    // Converging adopts the objects and changes none of them.
    let before = std::fs::read(root.join("dir3/nested 3/plain-8")).expect("read");
    let o = run(&stack, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains(" 0 changed"), "{}", text(&o));
    assert_eq!(std::fs::read(root.join("dir3/nested 3/plain-8")).expect("read"), before);
    let o = run(&stack, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(text(&o).contains("nothing differs"), "{}", text(&o));

    // Never overwrites.
    let o = std::process::Command::new(super::engine::iade_bin())
        .args(["import", "file", "--out"])
        .arg(&stack)
        .arg(&root)
        .output()
        .expect("iade runs");
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("exists already"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn import_explains_what_it_cannot_do() {
    let o = std::process::Command::new(super::engine::iade_bin())
        .args(["import", "widget", "x"])
        .output()
        .expect("runs");
    assert_eq!(code(&o), Some(1));
    assert!(text(&o).contains("iade cannot import a `widget`"), "{}", text(&o));
    let bin = std::env::temp_dir().join(format!("iade-import-bin-{}", std::process::id()));
    std::fs::write(&bin, [0u8, 255]).expect("write");
    let o = std::process::Command::new(super::engine::iade_bin())
        .args(["import", "file"])
        .arg(&bin)
        .output()
        .expect("runs");
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("give --out DIR"), "{}", text(&o));
    let _ = std::fs::remove_file(&bin);
}
