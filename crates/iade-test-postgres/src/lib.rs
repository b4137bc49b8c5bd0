//! Throwaway PostgreSQL clusters for tests and benchmarks: `initdb` and `pg_ctl` from
//! `/usr/lib/postgresql/*/bin` (not on PATH), run as the `postgres` user because PostgreSQL
//! refuses root, a Unix socket in a temporary directory and, unless asked, no TCP port. A
//! cluster is stopped and removed when dropped, whatever happened. A cluster that cannot start
//! is a panic that says why: the tests that need one fail, never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Its directory: `data/`, `sock/` and the server's `log`.
    pub dir: PathBuf,
    /// The server's binaries.
    pub bin: PathBuf,
    /// The port: it names the socket too.
    pub port: u16,
    options: String,
}

/// Runs a program as the `postgres` user.
pub fn as_postgres(program: &Path, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("runuser cannot run {}: {e}", program.display()))
}

/// The newest installed server's binaries.
fn server_bin() -> PathBuf {
    let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap_or_else(|e| panic!("PostgreSQL is not installed (.ci/run installs it): {e}"))
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    bins.sort();
    bins.pop().unwrap_or_else(|| panic!("no initdb under /usr/lib/postgresql/*/bin"))
}

impl Cluster {
    /// A cluster reachable on its socket only.
    pub fn start(tag: &str) -> Cluster {
        Cluster::start_with(tag, "-c listen_addresses=''", 5432)
    }

    /// A cluster started with more server options (`-c name=value`…) on `port`.
    pub fn start_with(tag: &str, server_options: &str, port: u16) -> Cluster {
        let bin = server_bin();
        let dir = std::env::temp_dir().join(format!("iade-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
        assert!(chown.is_ok_and(|s| s.success()), "cannot give {} to postgres", dir.display());
        let options = format!("-k {}/sock -p {port} {server_options} -c fsync=off", dir.display());
        let cluster = Cluster { dir, bin, port, options };
        let data = cluster.data();
        let o = as_postgres(
            &cluster.bin.join("initdb"),
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        );
        assert!(o.status.success(), "initdb: {}", String::from_utf8_lossy(&o.stderr));
        cluster.resume();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    /// Starts the server again after `stop`.
    pub fn resume(&self) {
        let log = self.dir.join("log").to_string_lossy().into_owned();
        let o = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-o", &self.options, "-l", &log, "-w", "start"],
        );
        let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        assert!(
            o.status.success(),
            "the server does not start: {}\n{log}",
            String::from_utf8_lossy(&o.stdout)
        );
    }

    /// Stops the server at once (`-m immediate`: what a crash looks like to clients).
    pub fn stop(&self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"), &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    /// The socket directory.
    pub fn socket(&self) -> String {
        self.dir.join("sock").to_string_lossy().into_owned()
    }

    /// A libpq URI of database `postgres` as the bootstrap superuser, over the socket.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// A libpq URI of database `db` as the bootstrap superuser, over the socket.
    pub fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@localhost:{}/{db}?host={}", self.port, self.socket())
    }

    /// Runs SQL in database `postgres` with psql and returns its unaligned output.
    pub fn sql(&self, query: &str) -> String {
        self.sql_in("postgres", query)
    }

    /// Runs SQL in database `db`; a failing statement is a panic with psql's message.
    pub fn sql_in(&self, db: &str, query: &str) -> String {
        let args = self.psql_args(db, &["-Atc", query]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = as_postgres(&self.bin.join("psql"), &args);
        assert!(o.status.success(), "{query}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Runs SQL in database `postgres`; `None` when it fails (a table not created yet).
    pub fn try_sql(&self, query: &str) -> Option<String> {
        let args = self.psql_args("postgres", &["-Atc", query]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = as_postgres(&self.bin.join("psql"), &args);
        o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// psql's arguments to reach database `db`, then `more`.
    pub fn psql_args<'a>(&'a self, db: &'a str, more: &[&'a str]) -> Vec<String> {
        let mut args: Vec<String> =
            ["-h", &self.socket(), "-p", &self.port.to_string(), "-U", "postgres", "-d", db]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(more.iter().map(|s| s.to_string()));
        args
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
