//! Language server benchmark through the real binary over stdio: a 10,000-resource stack in
//! 100 files; one-line `didChange` → `publishDiagnostics` latency (p50, p95), completion
//! latency (p95), resident memory after opening and after 1,000 edits. Then the same latency
//! in one file of 10,000 resources of which 100 break a policy: what publishing many
//! diagnostics into a large file costs.
//!
//! Run with `cargo bench -p iade-cli --bench lsp`. Targets: didChange → diagnostics p50 ≤ 30
//! ms, p95 ≤ 80 ms; completion p95 ≤ 50 ms; memory after open ≤ 300 MB and ≤ 10% growth after
//! 1,000 edits.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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

fn file_text(k: usize) -> String {
    let mut s = String::from("use std.fs.{file, directory}\n\n");
    for i in k * 100..k * 100 + 100 {
        if i % 10 == 0 {
            s.push_str(&format!("directory d{i} {{\n  path = \"/srv/bench/d{i}\"\n  mode = 0o755\n}}\n\n"));
        } else {
            let d = i - i % 10;
            s.push_str(&format!(
                "file f{i} {{\n  path = \"${{d{d}.path}}/f{i}.txt\"\n  content = \"n = {i}\\n\"\n  mode = 0o644\n}}\n\n"
            ));
        }
    }
    s
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
        })
        .flatten()
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A running `iade lsp`, spoken to over its stdin and stdout.
struct Server {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let exe = Path::new(env!("CARGO_BIN_EXE_iade"));
        let mut child = Command::new(exe)
            .arg("lsp")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("iade lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut server = Server { child, stdin, stdout };
        server.send(
            json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "processId": null, "rootUri": null, "capabilities": {} } }),
        );
        server.wait_for(&|m| m["id"] == 1);
        server
    }

    fn send(&mut self, v: Value) {
        let body = serde_json::to_vec(&v).expect("json");
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).expect("write");
        self.stdin.write_all(&body).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn wait_for(&mut self, pred: &dyn Fn(&Value) -> bool) -> Value {
        loop {
            let m = read_message(&mut self.stdout).expect("message");
            if pred(&m) {
                return m;
            }
        }
    }

    /// Opens `text` at `uri`; the diagnostics published for it.
    fn open(&mut self, uri: &str, text: &str) -> Value {
        self.send(
            json!({ "jsonrpc": "2.0", "method": "textDocument/didOpen", "params": { "textDocument": { "uri": uri, "languageId": "iade", "version": 1, "text": text } } }),
        );
        self.wait_for(&|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri)
    }

    /// Replaces columns `from..to` of `line` with `text` as version `version`; how long until
    /// that version's diagnostics were published, in milliseconds.
    fn edit(&mut self, uri: &str, version: u64, (line, from, to): (u64, u64, u64), text: &str) -> f64 {
        let t = Instant::now();
        self.send(json!({ "jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": { "uri": uri, "version": version },
            "contentChanges": [{ "range": { "start": { "line": line, "character": from }, "end": { "line": line, "character": to } }, "text": text }] } }));
        self.wait_for(&|m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri
                && m["params"]["version"] == json!(version)
        });
        t.elapsed().as_secs_f64() * 1000.0
    }

    fn stop(mut self) {
        self.send(json!({ "jsonrpc": "2.0", "id": 9, "method": "shutdown", "params": null }));
        self.wait_for(&|m| m["id"] == 9);
        self.send(json!({ "jsonrpc": "2.0", "method": "exit", "params": null }));
        let _ = self.child.wait_timeout_or_kill(Duration::from_secs(5));
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("iade-bench-lsp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    for k in 0..100 {
        std::fs::write(dir.join(format!("f{k:03}.iade")), file_text(k)).expect("write");
    }
    let mut server = Server::start(&dir);
    let pid = server.child.id();
    let path = dir.join("f042.iade");
    let uri = format!("file://{}", path.display());
    let text = file_text(42);
    let t = Instant::now();
    server.open(&uri, &text);
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    let after_open = rss_mb(pid);
    let line = text.lines().position(|l| l.contains("content = \"n = 4201")).expect("line") as u64;
    let change: Vec<f64> = (0..1000u64)
        .map(|round| server.edit(&uri, round + 2, (line, 17, 21), &format!("{:04}", round % 10000)))
        .collect();
    let after_edits = rss_mb(pid);
    let mut completion = Vec::new();
    for id in 0..50 {
        let t = Instant::now();
        server
            .send(json!({ "jsonrpc": "2.0", "id": 100 + id, "method": "textDocument/completion", "params": {
            "textDocument": { "uri": uri }, "position": { "line": line, "character": 2 } } }));
        server.wait_for(&|m| m["id"] == json!(100 + id));
        completion.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    server.stop();
    println!("open (load 10,000 resources in 100 files, first diagnostics): {open_ms:.0} ms");
    println!(
        "didChange -> publishDiagnostics over 1,000 one-line edits: p50 {:.1} ms, p95 {:.1} ms",
        percentile(&mut change.clone(), 0.5),
        percentile(&mut change.clone(), 0.95)
    );
    println!("completion: p95 {:.1} ms", percentile(&mut completion, 0.95));
    println!(
        "resident memory: {after_open:.0} MB after open, {after_edits:.0} MB after 1,000 edits ({:+.1}%)",
        (after_edits / after_open - 1.0) * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    violations();
}

/// One file of 10,000 files whose policy fails on 100 of them: each edit publishes 100
/// diagnostics, each with a label in the resource and two at the top of the file.
fn violations() {
    let dir = std::env::temp_dir().join(format!("iade-bench-lsp-violations-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut text = String::from(
        "use std.fs.{file}\n\nrule not_world_writable(x: file) = x.mode & 0o002 == 0 else \"${x.path} is world-writable\"\n\npolicy layout {\n  severity = deny\n  for x in intent(file) {\n    require not_world_writable(x)\n  }\n}\n\n",
    );
    for i in 0..10_000 {
        let mode = if i % 100 == 0 { "0o666" } else { "0o644" };
        text.push_str(&format!(
            "file svc_{i} {{\n  path = \"/srv/app/svc-{i}/config.yaml\"\n  mode = {mode}\n  content = \"port = {}\\n\"\n}}\n\n",
            10_000 + i
        ));
    }
    let path = dir.join("main.iade");
    std::fs::write(&path, &text).expect("write");
    let uri = format!("file://{}", path.display());
    let mut server = Server::start(&dir);
    let published = server.open(&uri, &text);
    let count = published["params"]["diagnostics"].as_array().map_or(0, Vec::len);
    assert_eq!(count, 100, "the policy fails on 100 files");
    let line = text.lines().position(|l| l.contains("port = 10042")).expect("line") as u64;
    let mut change: Vec<f64> = (0..100u64)
        .map(|round| server.edit(&uri, round + 2, (line, 20, 24), &format!("{:04}", round)))
        .collect();
    server.stop();
    println!(
        "didChange -> publishDiagnostics in a file of 10,000 resources with 100 policy violations, over 100 edits: p50 {:.1} ms, p95 {:.1} ms",
        percentile(&mut change.clone(), 0.5),
        percentile(&mut change, 0.95)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, d: Duration) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for std::process::Child {
    fn wait_timeout_or_kill(&mut self, d: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.kill();
        self.wait().ok()
    }
}
