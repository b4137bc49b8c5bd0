//! The PostgreSQL provider on a real server: a throwaway cluster started for the test
//! (`initdb` and `pg_ctl` from `/usr/lib/postgresql/*/bin`, run as the `postgres` user because
//! PostgreSQL refuses root, a Unix socket in a temporary directory, no TCP port), stopped and
//! removed when the test ends, whatever happened.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::engine::{code, run, stack, text};

struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
}

fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .expect("runuser runs")
}

impl Cluster {
    fn start(tag: &str) -> Cluster {
        let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (.ci/run installs it)")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .collect();
        bins.sort();
        let bin = bins.pop().expect("an initdb");
        let dir = std::env::temp_dir().join(format!("iade-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).expect("dir");
        let chown =
            Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().expect("chown");
        assert!(chown.success());
        let cluster = Cluster { dir, bin };
        let data = cluster.dir.join("data");
        let o = as_postgres(
            &cluster.bin.join("initdb"),
            &["-D", &data.to_string_lossy(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        );
        assert!(o.status.success(), "initdb: {}", String::from_utf8_lossy(&o.stderr));
        let options = format!("-k {} -c listen_addresses='' -c fsync=off", cluster.socket());
        let o = as_postgres(
            &cluster.bin.join("pg_ctl"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &options,
                "-l",
                &cluster.dir.join("log").to_string_lossy(),
                "-w",
                "start",
            ],
        );
        assert!(o.status.success(), "the server does not start: {}", String::from_utf8_lossy(&o.stdout));
        cluster
    }

    fn socket(&self) -> String {
        self.dir.join("sock").to_string_lossy().into_owned()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@localhost/postgres?host={}", self.socket())
    }

    fn sql(&self, query: &str) -> String {
        let o = as_postgres(
            &self.bin.join("psql"),
            &["-h", &self.socket(), "-U", "postgres", "-d", "postgres", "-Atc", query],
        );
        assert!(o.status.success(), "{query}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        let _ = as_postgres(&self.bin.join("pg_ctl"), &["-D", &data, "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn roles_and_databases_are_created_hand_made_drift_is_corrected_and_absent_drops_them() {
    let cluster = Cluster::start("roles");
    let source = |ensure: &str| {
        format!(
            r#"use std.postgres as pg

provider postgres main {{
  url = "{url}"
}}

pg.role readers {{
  name = "readers"
  ensure = {ensure}
}}

pg.role app {{
  name = "app_rw"
  ensure = {ensure}
  login = true
  password = secret("APP_PW")
  member_of = ["readers"]
  connection_limit = 20
}}

pg.role odd {{
  name = "we\"ird; role"
  ensure = {ensure}
}}

pg.database db {{
  name = "appdb"
  ensure = {ensure}
  owner = "app_rw"
}}
"#,
            url = cluster.url()
        )
    };
    let dir = stack("postgres", &source("present"));
    let env = [("IADE_SECRET_APP_PW", "s3cret pass")];
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(
        cluster.sql("SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = 'app_rw'"),
        "t|20"
    );
    assert!(
        cluster
            .sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app_rw'")
            .starts_with("SCRAM-SHA-256$")
    );
    assert_eq!(
        cluster.sql("SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'app_rw'"),
        "readers"
    );
    assert_eq!(cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'we\"ird; role'"), "1");
    assert_eq!(
        cluster.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'"),
        "app_rw"
    );
    assert!(!text(&o).contains("s3cret"), "{}", text(&o));
    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(0), "the second look finds nothing (the password verified): {}", text(&o));

    // At 2 a.m. someone makes the app a superuser, revokes its group and resets its password.
    cluster.sql("ALTER ROLE app_rw SUPERUSER");
    cluster.sql("REVOKE readers FROM app_rw");
    cluster.sql("ALTER ROLE app_rw PASSWORD 'hunter2'");
    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    let plan = text(&o);
    assert!(plan.contains("superuser: true → false"), "{plan}");
    assert!(plan.contains("member_of: [] → [\"readers\"]"), "{plan}");
    assert!(plan.contains("password: another password → the intended password"), "{plan}");
    assert!(!plan.contains("hunter2") && !plan.contains("s3cret"), "{plan}");
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(cluster.sql("SELECT rolsuper FROM pg_roles WHERE rolname = 'app_rw'"), "f");
    let o = run(&dir, &["plan"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    std::fs::write(dir.join("main.iade"), source("absent")).expect("write");
    let o = run(&dir, &["converge"], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(
        cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname IN ('app_rw', 'readers', 'we\"ird; role')"),
        "0"
    );
    assert_eq!(cluster.sql("SELECT count(*) FROM pg_database WHERE datname = 'appdb'"), "0");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_postgres_example_converges_a_server_from_empty_and_its_control_finds_a_handmade_superuser() {
    let cluster = Cluster::start("example");
    let example = stack(
        "postgres-example",
        &std::fs::read_to_string(super::root().join("examples/postgres/main.iade")).expect("example"),
    );
    let param = format!("url={}", cluster.url());
    let env =
        [("IADE_SECRET_APP_PASSWORD", "app-secret"), ("IADE_SECRET_REPORTING_PASSWORD", "report-secret")];
    let o = run(&example, &["converge", "--param", &param], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(
        cluster.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"),
        "app_owner"
    );
    assert_eq!(
        cluster.sql("SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'app'"),
        "app_readers,app_writers"
    );
    let o = run(&example, &["plan", "--param", &param], &env);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    cluster.sql("CREATE ROLE mallory SUPERUSER");
    let o = run(&example, &["converge", "--param", &param], &env);
    assert_eq!(code(&o), Some(4), "the control fails on the hand-made superuser: {}", text(&o));
    assert!(text(&o).contains("mallory is a superuser"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&example);
}

#[test]
fn a_database_grant_revoked_by_hand_is_granted_again() {
    let cluster = Cluster::start("grants");
    let source = |ensure: &str| {
        format!(
            "use std.postgres as pg\n\nprovider postgres main {{\n  url = \"{}\"\n}}\n\npg.role reporting {{\n  name = \"reporting\"\n  login = true\n}}\n\npg.database app {{\n  name = \"app\"\n}}\n\npg.grant reporting_create {{\n  role = \"reporting\"\n  database = \"app\"\n  privilege = create\n  ensure = {ensure}\n}}\n",
            cluster.url()
        )
    };
    let granted = || {
        cluster.sql(
            "SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles r ON r.oid = a.grantee WHERE d.datname = 'app' AND r.rolname = 'reporting' AND a.privilege_type = 'CREATE'",
        )
    };
    let dir = stack("postgres-grants", &source("present"));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(granted(), "1");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    cluster.sql("REVOKE CREATE ON DATABASE app FROM reporting");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(text(&o).contains("+ grant.reporting_create"), "{}", text(&o));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(granted(), "1");

    std::fs::write(dir.join("main.iade"), source("absent")).expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(granted(), "0");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_schema_is_created_in_its_database_its_owner_kept_and_absent_drops_it() {
    let cluster = Cluster::start("schemas");
    let source = |ensure: &str| {
        format!(
            "use std.postgres as pg\n\nprovider postgres main {{\n  url = \"{}\"\n}}\n\npg.role owner {{\n  name = \"data_owner\"\n}}\n\npg.database app {{\n  name = \"app\"\n}}\n\npg.schema data {{\n  database = \"app\"\n  name = \"data\"\n  owner = \"data_owner\"\n  ensure = {ensure}\n}}\n",
            cluster.url()
        )
    };
    let owner = || {
        let o = as_postgres(
            &cluster.bin.join("psql"),
            &[
                "-h",
                &cluster.socket(),
                "-U",
                "postgres",
                "-d",
                "app",
                "-Atc",
                "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'data'",
            ],
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let dir = stack("postgres-schemas", &source("present"));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(owner(), "data_owner");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    let o = as_postgres(
        &cluster.bin.join("psql"),
        &[
            "-h",
            &cluster.socket(),
            "-U",
            "postgres",
            "-d",
            "app",
            "-c",
            "ALTER SCHEMA data OWNER TO postgres",
        ],
    );
    assert!(o.status.success());
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(text(&o).contains("owner: \"postgres\" → \"data_owner\""), "{}", text(&o));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(owner(), "data_owner");

    std::fs::write(dir.join("main.iade"), source("absent")).expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(owner(), "");
    let _ = std::fs::remove_dir_all(&dir);
}
