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
    // A kind's definition is in the standard library, served as a read-only file.
    let def = lsp.request(
        "textDocument/definition",
        json!({ "textDocument": { "uri": u }, "position": pos("file config", 1) }),
    );
    let std_uri = def[0]["uri"].as_str().unwrap_or_default().to_string();
    let std_path = std_uri.trim_start_matches("file://");
    assert!(std_path.ends_with("fs.iade"), "{def}");
    let std_text = std::fs::read_to_string(std_path).unwrap_or_else(|e| panic!("{std_path}: {e}: {def}"));
    assert!(std_text.contains("kind file"), "{std_text}");
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
    let found = lsp.request("workspace/symbol", json!({ "query": "conf" }));
    let names: Vec<&str> =
        found.as_array().expect("symbols").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["config"], "{found}");
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

/// `(code, line, column)` of each diagnostic of `iade check --format json` (1-based).
/// A diagnostic as compared: code, primary line and column, and the other labels' lines and
/// columns in the same file (one-based, columns in characters).
type Compared = (String, u64, u64, Vec<(u64, u64)>);

fn check_json(dir: &Path) -> Vec<Compared> {
    let o = Command::new(super::engine::iade_bin())
        .args(["check", "--format", "json", "."])
        .current_dir(dir)
        .output()
        .expect("check runs");
    let v: Value = serde_json::from_slice(&o.stdout).expect("json report");
    let mut out: Vec<Compared> = v["diagnostics"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|d| d["labels"][0]["file"].as_str().is_some_and(|f| f.ends_with("main.iade")))
        // In an editor no `--param` is given: a param without a value is unknown there, by design.
        .filter(|d| {
            !(d["code"] == "E0205" && d["message"].as_str().is_some_and(|m| m.contains("has no value")))
        })
        .map(|d| {
            let l = d["labels"]
                .as_array()
                .expect("labels")
                .iter()
                .find(|l| l["primary"] == true)
                .unwrap_or(&d["labels"][0])
                .clone();
            let mut others: Vec<(u64, u64)> = d["labels"]
                .as_array()
                .expect("labels")
                .iter()
                .filter(|o| o["primary"] == false && o["file"] == l["file"])
                .map(|o| {
                    (o["start"]["line"].as_u64().unwrap_or(0), o["start"]["column"].as_u64().unwrap_or(0))
                })
                .collect();
            others.sort();
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                l["start"]["line"].as_u64().unwrap_or(0),
                l["start"]["column"].as_u64().unwrap_or(0),
                others,
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_servers_diagnostics_and_their_related_locations_equal_iade_checks_for_every_golden_input() {
    let root = super::root();
    let mut inputs: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["tests/check/err", "tests/syntax/err", "tests/check/ok", "tests/syntax/ok"] {
        for e in std::fs::read_dir(root.join(dir)).expect("golden dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "iade") {
                inputs.push(p);
            }
        }
    }
    inputs.sort();
    let base = std::env::temp_dir().join(format!("iade-lsp-goldens-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut lsp = Lsp::start(&root);
    let _ = lsp.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    lsp.notify("initialized", json!({}));
    let mut checked = 0;
    let mut related = 0;
    for (i, input) in inputs.iter().enumerate() {
        let text = String::from_utf8_lossy(&std::fs::read(input).expect("golden")).into_owned();
        if text.contains('\0') || std::fs::read_to_string(input).is_err() {
            continue; // not text: the server only ever gets text from an editor
        }
        let dir = base.join(format!("{i}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let main = dir.join("main.iade");
        std::fs::write(&main, &text).expect("copy");
        let want = check_json(&dir);
        let u = uri(&main);
        lsp.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": u, "languageId": "iade", "version": 1, "text": text } }),
        );
        let published = lsp.diagnostics(&u);
        let index = iade_span_index(&text);
        let at = |start: &Value| {
            let line = start["line"].as_u64().unwrap_or(0);
            (line + 1, chars_column(&index, line, start["character"].as_u64().unwrap_or(0)) + 1)
        };
        let mut got: Vec<Compared> = published["diagnostics"]
            .as_array()
            .expect("list")
            .iter()
            .map(|d| {
                let (line, column) = at(&d["range"]["start"]);
                // Related information in the same file: where the other labels point.
                let mut others: Vec<(u64, u64)> = d["relatedInformation"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter(|i| i["location"]["uri"] == json!(u))
                            .map(|i| at(&i["location"]["range"]["start"]))
                            .collect()
                    })
                    .unwrap_or_default();
                others.sort();
                (d["code"].as_str().unwrap_or_default().to_string(), line, column, others)
            })
            .collect();
        got.sort();
        assert_eq!(got, want, "{}: the server and `iade check` disagree", input.display());
        checked += 1;
        related += want.iter().filter(|d| !d.3.is_empty()).count();
    }
    assert!(checked > 100, "only {checked} golden inputs were compared");
    assert!(related > 10, "only {related} diagnostics had related locations to compare");
    let _ = lsp.request("shutdown", json!(null));
    lsp.notify("exit", json!(null));
    let _ = lsp.child.wait();
    let _ = std::fs::remove_dir_all(&base);
}

/// The lines of a text, for converting a UTF-16 column to a column in characters.
fn iade_span_index(text: &str) -> Vec<String> {
    text.split('\n').map(str::to_string).collect()
}

fn chars_column(lines: &[String], line: u64, utf16: u64) -> u64 {
    let Some(l) = lines.get(line as usize) else { return utf16 };
    let mut units = 0u64;
    let mut chars = 0u64;
    for c in l.chars() {
        if units >= utf16 {
            break;
        }
        units += c.len_utf16() as u64;
        chars += 1;
    }
    chars
}

#[test]
fn positions_are_utf16_for_emoji_and_cjk_text() {
    let dir = std::env::temp_dir().join(format!("iade-lsp-utf16-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let text = "use std.fs.{file}\n# 🚀 deploy 日本語\nfile x { path = \"/srv/日本/🚀\"  contnet = \"y\" }\n";
    let main = dir.join("main.iade");
    std::fs::write(&main, text).expect("source");
    let u = uri(&main);
    let mut lsp = Lsp::start(&dir);
    let _ = lsp.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    lsp.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": u, "languageId": "iade", "version": 1, "text": text } }),
    );
    let d = lsp.diagnostics(&u);
    let line = text.lines().nth(2).expect("line");
    let want = line[..line.find("contnet").expect("typo")].encode_utf16().count();
    assert_eq!(d["diagnostics"][0]["range"]["start"], json!({ "line": 2, "character": want }), "{d}");
    // An edit after the emoji, addressed in UTF-16 units, lands where the editor meant.
    let start = want as u32;
    lsp.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": u, "version": 2 },
            "contentChanges": [{ "range": { "start": { "line": 2, "character": start }, "end": { "line": 2, "character": start + 7 } }, "text": "content" }]
        }),
    );
    assert_eq!(lsp.diagnostics(&u)["diagnostics"], json!([]));
    let _ = lsp.request("shutdown", json!(null));
    lsp.notify("exit", json!(null));
    let _ = lsp.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn live_status_shows_journal_drift_on_its_resource_and_follows_new_runs() {
    let dir = std::env::temp_dir().join(format!("iade-lsp-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let text = format!(
        "use std.fs.{{file}}\n\nfile notes {{\n  path = \"{}/notes.txt\"\n  content = \"x\\n\"\n  manage = observe\n}}\n",
        dir.display()
    );
    let main = dir.join("main.iade");
    std::fs::write(&main, &text).expect("source");
    std::fs::write(dir.join("notes.txt"), "edited by hand\n").expect("drifted file");
    let converge = || super::engine::run(&dir, &["converge"], &[]);
    let o = converge();
    assert_eq!(super::engine::code(&o), Some(0), "{}", super::engine::text(&o));
    let u = uri(&main);
    let mut lsp = Lsp::start(&dir);
    let _ = lsp.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    lsp.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": u, "languageId": "iade", "version": 1, "text": text } }),
    );
    let d = lsp.diagnostics(&u);
    let infos: Vec<&Value> =
        d["diagnostics"].as_array().expect("list").iter().filter(|d| d["severity"] == 3).collect();
    assert_eq!(infos.len(), 1, "{d}");
    assert!(infos[0]["message"].as_str().unwrap_or_default().contains("file.notes drifted"), "{d}");
    let line = text.lines().position(|l| l.contains("file notes")).expect("line") as u64;
    assert_eq!(infos[0]["range"]["start"]["line"].as_u64(), Some(line));
    let hover = lsp.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": u }, "position": { "line": line, "character": 6 } }),
    );
    assert!(hover["contents"]["value"].as_str().unwrap_or_default().contains("drifted"), "{hover}");
    // The drift goes away outside the editor; the next run's journal change updates it.
    std::fs::write(dir.join("notes.txt"), "x\n").expect("repaired by hand");
    assert_eq!(super::engine::code(&converge()), Some(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(std::time::Instant::now() < deadline, "no update after the journal changed");
        let d = lsp.diagnostics(&u);
        if d["diagnostics"] == json!([]) {
            break;
        }
    }
    let _ = lsp.request("shutdown", json!(null));
    lsp.notify("exit", json!(null));
    let _ = lsp.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rename_quick_fixes_and_semantic_tokens_work_over_stdio() {
    let dir = std::env::temp_dir().join(format!("iade-lsp-edit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let main = dir.join("main.iade");
    std::fs::write(&main, MAIN).expect("source");
    let u = uri(&main);
    let mut lsp = Lsp::start(&dir);
    let _ = lsp.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    lsp.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": u, "languageId": "iade", "version": 1, "text": MAIN } }),
    );
    let _ = lsp.diagnostics(&u);
    let line_of = |needle: &str| MAIN[..MAIN.find(needle).expect("needle")].matches('\n').count() as u64;

    // Rename a let: the declaration and its use.
    let edit = lsp.request(
        "textDocument/rename",
        json!({ "textDocument": { "uri": u }, "position": { "line": line_of("let port"), "character": 5 }, "newName": "listen_port" }),
    );
    let edits = edit["changes"][&u].as_array().expect("edits").clone();
    assert_eq!(edits.len(), 2, "{edit}");
    assert!(edits.iter().all(|e| e["newText"] == "listen_port"));
    // A name that is taken is refused.
    let id = 99;
    lsp.send(&json!({ "jsonrpc": "2.0", "id": id, "method": "textDocument/rename", "params": {
        "textDocument": { "uri": u }, "position": { "line": line_of("let port"), "character": 5 }, "newName": "app" } }));
    loop {
        let m = lsp.messages.recv_timeout(Duration::from_secs(30)).expect("answer");
        if m["id"] == json!(id) {
            assert!(m["error"]["message"].as_str().unwrap_or_default().contains("already declared"), "{m}");
            break;
        }
    }

    // A misspelt field gets its did-you-mean as a quick fix; a decimal mode its octal fix.
    let typo = MAIN.replace("  content =", "  contnet =").replace("}\n\nfile", "  mode = 755\n}\n\nfile");
    lsp.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": u, "version": 2 }, "contentChanges": [{ "text": typo }] }),
    );
    let _ = lsp.diagnostics(&u);
    let l = typo[..typo.find("contnet").expect("typo")].matches('\n').count() as u64;
    let actions = lsp.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": u }, "range": { "start": { "line": l, "character": 2 }, "end": { "line": l, "character": 9 } }, "context": { "diagnostics": [] } }),
    );
    let titles: Vec<&str> =
        actions.as_array().expect("actions").iter().filter_map(|a| a["title"].as_str()).collect();
    assert!(titles.contains(&"change to `content`"), "{actions}");
    let l = typo[..typo.find("755").expect("mode")].matches('\n').count() as u64;
    let actions = lsp.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": u }, "range": { "start": { "line": l, "character": 9 }, "end": { "line": l, "character": 12 } }, "context": { "diagnostics": [] } }),
    );
    let fix = &actions[0];
    assert_eq!(fix["title"], "write `0o755`", "{actions}");
    assert_eq!(fix["edit"]["changes"][&u][0]["newText"], "0o755");

    let tokens = lsp.request("textDocument/semanticTokens/full", json!({ "textDocument": { "uri": u } }));
    let data = tokens["data"].as_array().expect("data");
    assert!(data.len() > 20 && data.len().is_multiple_of(5), "{tokens}");
    assert_eq!(data[3], 0, "the first token, `use`, is a keyword");

    let _ = lsp.request("shutdown", json!(null));
    lsp.notify("exit", json!(null));
    let _ = lsp.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inlay_hints_and_adding_the_missing_required_fields_work_over_stdio() {
    let dir = std::env::temp_dir().join(format!("iade-lsp-hints-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let main = dir.join("main.iade");
    let text = format!("{MAIN}\nfile bare {{\n  mode = 0o600\n}}\n");
    std::fs::write(&main, &text).expect("source");
    let u = uri(&main);
    let mut lsp = Lsp::start(&dir);
    let init = lsp.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    assert_eq!(init["capabilities"]["inlayHintProvider"], true, "{init}");
    lsp.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": u, "languageId": "iade", "version": 1, "text": text } }),
    );
    let d = lsp.diagnostics(&u);
    assert_eq!(d["diagnostics"][0]["code"], "E0202", "{d}");

    let hints = lsp.request(
        "textDocument/inlayHint",
        json!({ "textDocument": { "uri": u }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 99, "character": 0 } } }),
    );
    let labels: Vec<&str> =
        hints.as_array().expect("hints").iter().filter_map(|h| h["label"].as_str()).collect();
    assert_eq!(labels, ["= \"/srv/app/config.toml\"", "= \"port = 8080\\n\""], "{hints}");
    let line = MAIN.lines().position(|l| l.contains("config.toml")).expect("line");
    assert_eq!(hints[0]["position"]["line"], line, "{hints}");

    let l = text[..text.find("bare").expect("bare")].matches('\n').count() as u64;
    let actions = lsp.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": u }, "range": { "start": { "line": l, "character": 6 }, "end": { "line": l, "character": 6 } }, "context": { "diagnostics": [] } }),
    );
    let add = actions
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["title"] == "add the missing required field `path`")
        .unwrap_or_else(|| panic!("{actions}"));
    let edit = &add["edit"]["changes"][&u][0];
    assert_eq!(edit["newText"], "    path = \"\"\n", "{add}");
    assert_eq!(edit["range"]["start"]["line"], l + 2, "above the closing brace: {add}");

    let _ = lsp.request("shutdown", json!(null));
    lsp.notify("exit", json!(null));
    let _ = lsp.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_burst_of_edits_applies_in_order_and_neither_a_crash_nor_stale_diagnostics_follow() {
    let dir = std::env::temp_dir().join(format!("iade-lsp-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let main = dir.join("main.iade");
    // Big enough that checking it takes a while, so edits arrive while it is being checked.
    let mut text = String::from("use std.fs.{file}\n\nlet port = 1\n");
    for i in 0..3000 {
        text.push_str(&format!("file f{i} {{\n  path = \"/srv/f{i}\"\n  content = \"${{port}}\"\n}}\n"));
    }
    std::fs::write(&main, &text).expect("source");
    let u = uri(&main);
    let mut lsp = Lsp::start(&dir);
    let _ = lsp.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    lsp.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": u, "languageId": "iade", "version": 1, "text": text } }),
    );
    let _ = lsp.diagnostics(&u);

    // Forty edits, each typing ` + 1` after the port (`let port = 1 + 1 + 1…`), with a hover
    // and a completion after each, all sent without waiting; the last edit types ` + nope`.
    let col = "let port = 1".len() as u64;
    let mut ids = Vec::new();
    let edits = 40u64;
    for v in 0..edits {
        let new_text = if v + 1 == edits { " + nope" } else { " + 1" };
        lsp.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": u, "version": v + 2 }, "contentChanges": [{
                "range": { "start": { "line": 2, "character": col + 4 * v }, "end": { "line": 2, "character": col + 4 * v } },
                "text": new_text }] }),
        );
        for method in ["textDocument/hover", "textDocument/completion"] {
            let id = 1000 + ids.len() as i64;
            ids.push(id);
            lsp.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": {
                "textDocument": { "uri": u }, "position": { "line": 5, "character": 10 } } }));
        }
    }
    let last = edits + 1;
    let mut answered = std::collections::BTreeSet::new();
    let mut versions = Vec::new();
    while answered.len() < ids.len() || versions.last() != Some(&last) {
        let m = lsp.messages.recv_timeout(Duration::from_secs(60)).expect("the server keeps answering");
        if let Some(id) = m["id"].as_i64() {
            match m.get("error") {
                Some(e) => assert_eq!(e["code"], -32801, "only cancelled as content modified: {m}"),
                None => assert!(m.get("result").is_some(), "{m}"),
            }
            answered.insert(id);
        } else if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == u {
            let v = m["params"]["version"].as_u64().expect("a version");
            if v == last {
                // The edits applied in order: the typo sits after the thirty-nine ` + 1`s.
                let d = &m["params"]["diagnostics"][0];
                assert_eq!(d["code"], "E0101", "{m}");
                assert_eq!(
                    d["range"]["start"],
                    json!({ "line": 2, "character": col + 4 * (edits - 1) + 3 }),
                    "{m}"
                );
            }
            versions.push(v);
        }
    }
    assert!(versions.windows(2).all(|w| w[0] <= w[1]), "published in order, never stale: {versions:?}");
    assert!(lsp.child.try_wait().expect("status").is_none(), "the server is alive");
    let _ = lsp.request("shutdown", json!(null));
    lsp.notify("exit", json!(null));
    let _ = lsp.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_test_file_gets_diagnostics_and_a_code_lens_that_runs_its_test() {
    let dir = std::env::temp_dir().join(format!("iade-lsp-tests-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tests")).expect("dir");
    std::fs::write(dir.join("main.iade"), MAIN).expect("source");
    let test = "test \"the port is 8080\" {\n  expect port == 8080\n}\n\ntest \"on purpose\" {\n  expect port == 1\n}\n";
    let test_path = dir.join("tests/app_test.iade");
    std::fs::write(&test_path, test).expect("test");
    let u = uri(&test_path);
    let mut lsp = Lsp::start(&dir);
    let init = lsp.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    assert_eq!(init["capabilities"]["executeCommandProvider"]["commands"][0], "iade.runTest", "{init}");
    lsp.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": u, "languageId": "iade", "version": 1, "text": test } }),
    );
    let d = lsp.diagnostics(&u);
    assert_eq!(d["diagnostics"], json!([]), "the test file resolves the stack's names: {d}");

    let lenses = lsp.request("textDocument/codeLens", json!({ "textDocument": { "uri": u } }));
    let lenses = lenses.as_array().expect("lenses").clone();
    assert_eq!(lenses.len(), 2, "{lenses:?}");
    let command = &lenses[0]["command"];
    assert_eq!(command["command"], "iade.runTest");
    assert_eq!(command["arguments"][1], "the port is 8080");

    let result = lsp.request(
        "workspace/executeCommand",
        json!({ "command": "iade.runTest", "arguments": command["arguments"] }),
    );
    assert_eq!(result["results"][0]["passed"], true, "{result}");
    let result = lsp.request(
        "workspace/executeCommand",
        json!({ "command": "iade.runTest", "arguments": lenses[1]["command"]["arguments"] }),
    );
    assert_eq!(result["results"][0]["passed"], false, "{result}");
    assert_eq!(result["results"][0]["failures"][0]["detail"][1], "  `port` is 8080", "{result}");

    let _ = lsp.request("shutdown", json!(null));
    lsp.notify("exit", json!(null));
    let _ = lsp.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
