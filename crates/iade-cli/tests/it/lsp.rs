//! The real `iade lsp` binary driven over stdio with JSON-RPC: initialize, open, incremental
//! change, diagnostics equal to `iade check --format json`, hover, definition, references,
//! completion, symbols, formatting, shutdown and exit.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

struct Lsp {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: i64,
}

fn read_message(r: &mut BufReader<ChildStdout>) -> Option<Value> {
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse().ok()?;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl Lsp {
    fn start(cwd: &Path) -> Lsp {
        let mut child = Command::new(super::engine::iade_bin())
            .arg("lsp")
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("iade lsp starts");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            while let Some(m) = read_message(&mut stdout) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        Lsp { child, stdin, messages: rx, next_id: 1 }
    }

    fn send(&mut self, v: &Value) {
        let body = serde_json::to_vec(v).expect("json");
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).expect("write header");
        self.stdin.write_all(&body).expect("write body");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let m = self.messages.recv_timeout(Duration::from_secs(30)).expect("an answer comes");
            if m["id"] == json!(id) {
                return m["result"].clone();
            }
        }
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Value {
        loop {
            let m = self.messages.recv_timeout(Duration::from_secs(30)).expect("diagnostics come");
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri {
                return m["params"].clone();
            }
        }
    }
}

fn uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

const MAIN: &str = "use std.fs.{file, directory}\n\nlet port = 8080\n\ndirectory app {\n  path = \"/srv/app\"\n}\n\nfile config {\n  path = \"${directory.app.path}/config.toml\"\n  content = \"port = ${port}\\n\"\n}\n";

#[test]
fn the_language_server_answers_over_stdio_as_an_editor_uses_it() {
    let dir = std::env::temp_dir().join(format!("iade-lsp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let main = dir.join("main.iade");
    std::fs::write(&main, MAIN).expect("source");
    let u = uri(&main);
    let mut lsp = Lsp::start(&dir);
    let init =
        lsp.request("initialize", json!({ "processId": null, "rootUri": uri(&dir), "capabilities": {} }));
    assert_eq!(init["capabilities"]["textDocumentSync"], 2, "incremental sync: {init}");
    lsp.notify("initialized", json!({}));
    lsp.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": u, "languageId": "iade", "version": 1, "text": MAIN } }),
    );
    let d = lsp.diagnostics(&u);
    assert_eq!(d["diagnostics"], json!([]), "{d}");
    assert_eq!(d["version"], 1);

    // An incremental edit that misspells a field: the error arrives for version 2, with the
    // code and range `iade check` gives for the same text.
    let at = MAIN.lines().position(|l| l.contains("content =")).expect("line") as u32;
    lsp.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": u, "version": 2 },
            "contentChanges": [{ "range": { "start": { "line": at, "character": 2 }, "end": { "line": at, "character": 9 } }, "text": "contnet" }]
        }),
    );
    let d = lsp.diagnostics(&u);
    assert_eq!(d["version"], 2);
    let diags = d["diagnostics"].as_array().expect("list").clone();
    assert_eq!(diags.len(), 1, "{d}");
    assert_eq!(diags[0]["code"], "E0103");
    std::fs::write(dir.join("edited.iade"), MAIN.replace("  content =", "  contnet =")).expect("twin");
    std::fs::remove_file(&main).expect("move aside");
    let o = Command::new(super::engine::iade_bin())
        .args(["check", "--format", "json", "edited.iade"])
        .current_dir(&dir)
        .output()
        .expect("check runs");
    std::fs::write(&main, MAIN).expect("source back");
    std::fs::remove_file(dir.join("edited.iade")).expect("twin removed");
    let check: Value = serde_json::from_slice(&o.stdout).expect("json");
    let c = &check["diagnostics"][0];
    assert_eq!(c["code"], diags[0]["code"]);
    assert_eq!(c["start"]["line"], json!(null), "labels carry positions");
    let label = &c["labels"][0];
    assert_eq!(label["start"]["line"].as_u64().map(|l| l - 1), diags[0]["range"]["start"]["line"].as_u64());
    assert_eq!(
        label["start"]["column"].as_u64().map(|c| c - 1),
        diags[0]["range"]["start"]["character"].as_u64()
    );
    assert!(diags[0]["message"].as_str().unwrap_or_default().contains(c["message"].as_str().unwrap_or("?")));

    // Back to valid text, then the features.
    lsp.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": u, "version": 3 }, "contentChanges": [{ "text": MAIN }] }),
    );
    assert_eq!(lsp.diagnostics(&u)["diagnostics"], json!([]));
    let pos = |needle: &str, plus: u32| {
        let i = MAIN.find(needle).expect("needle");
        let line = MAIN[..i].matches('\n').count() as u32;
        let col = (i - MAIN[..i].rfind('\n').map_or(0, |j| j + 1)) as u32 + plus;
        json!({ "line": line, "character": col })
    };
    let hover = lsp.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": u }, "position": pos("file config", 1) }),
    );
    assert!(hover["contents"]["value"].as_str().unwrap_or_default().contains("kind file"), "{hover}");
    let def = lsp.request(
        "textDocument/definition",
        json!({ "textDocument": { "uri": u }, "position": pos("app.path", 1) }),
    );
    assert_eq!(def[0]["uri"], u, "{def}");
    assert_eq!(def[0]["range"]["start"], pos("app {", 0));
    let refs = lsp.request(
        "textDocument/references",
        json!({ "textDocument": { "uri": u }, "position": pos("port = 8080", 1), "context": { "includeDeclaration": true } }),
    );
    assert_eq!(refs.as_array().map(Vec::len), Some(2), "{refs}");
    let completion = lsp.request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": u }, "position": pos("content =", 0) }),
    );
    let labels: Vec<&str> =
        completion.as_array().expect("items").iter().filter_map(|c| c["label"].as_str()).collect();
    assert!(labels.contains(&"mode") && labels.contains(&"owner"), "{labels:?}");
    let symbols = lsp.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": u } }));
    let names: Vec<&str> =
        symbols.as_array().expect("symbols").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["port", "app", "config"]);
    let messy = "directory app{path=\"/a\"}\n";
    lsp.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": u, "version": 4 }, "contentChanges": [{ "text": messy }] }),
    );
    let edits = lsp.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": u }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(edits[0]["newText"], "directory app {\n  path = \"/a\"\n}\n", "{edits}");

    let _ = lsp.request("shutdown", json!(null));
    lsp.notify("exit", json!(null));
    let status = lsp.child.wait().expect("exits");
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
