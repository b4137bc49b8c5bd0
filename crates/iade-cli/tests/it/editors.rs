//! The editor integrations, run for real: the VS Code TextMate grammar tokenizes every example
//! (`npm test` in `editors/vscode`), and Neovim (headless) gets diagnostics from `iade lsp`.
//! They need Node with `npm ci` run in `editors/vscode`, and `nvim`; `.ci/run` installs both,
//! and under CI (`CI` set) a missing one fails the test instead of skipping it.

use std::process::Command;

fn required(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{what} is missing: .ci/run installs it");
    eprintln!("skipped: {what} is not installed here (`.ci/run` installs it)");
    false
}

#[test]
fn the_vscode_grammar_tokenizes_every_example_and_stdlib_file() {
    let dir = super::root().join("editors/vscode");
    let installed = dir.join("node_modules/vscode-textmate").is_dir()
        && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !required("node with `npm ci` in editors/vscode", installed) {
        return;
    }
    let o = Command::new("npm").args(["test", "--silent"]).current_dir(&dir).output().expect("npm runs");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn neovim_gets_diagnostics_from_iade_lsp() {
    let present = Command::new("nvim").arg("--version").output().is_ok_and(|o| o.status.success());
    if !required("nvim", present) {
        return;
    }
    let script = super::root().join("editors/neovim/test/run.sh");
    let o = Command::new("sh").arg(script).arg(super::engine::iade_bin()).output().expect("the script runs");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
