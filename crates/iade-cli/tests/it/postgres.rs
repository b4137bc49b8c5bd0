//! The PostgreSQL provider on a real server: a throwaway cluster started for each test
//! (`iade-test-postgres`), stopped and removed when the test ends, whatever happened.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iade_journal::Store;
use iade_test_postgres::{Cluster, as_postgres};

use super::engine::{TempDir, code, iade_bin, journal, run, runs, stack, text};

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
    // The owner's new tables are readable by the reports' role and writable by the app's.
    cluster.sql_in("app", "SET ROLE app_owner; CREATE TABLE app.orders (id int)");
    assert_eq!(
        cluster.sql_in("app", "SELECT has_table_privilege('reporting', 'app.orders', 'SELECT'), has_table_privilege('reporting', 'app.orders', 'INSERT'), has_table_privilege('app', 'app.orders', 'INSERT')"),
        "t|f|t"
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

/// A stack of this test's server with `body` after the provider.
fn pg_stack(name: &str, cluster: &Cluster, body: &str) -> TempDir {
    stack(
        name,
        &format!(
            "use std.postgres as pg\n\nprovider postgres main {{\n  url = \"{}\"\n}}\n\n{body}",
            cluster.url()
        ),
    )
}

#[test]
fn table_privileges_reach_tables_made_later_and_a_public_create_on_a_schema_fails_the_control() {
    let cluster = Cluster::start("privileges");
    let body = r#"use std.rules.{no_public_create}

pg.role owner { name = "app_owner" }
pg.role reader { name = "app_reader" }
pg.database app { name = "app"  owner = owner.name }
pg.schema data { database = app.name  name = "data"  owner = owner.name }
pg.extension crypto { database = app.name  name = "pgcrypto"  schema = data.name }
pg.schema_grant reach { role = reader.name  database = app.name  schema = data.name  privilege = usage }
pg.table_grant read {
  role = reader.name
  database = app.name
  schema = data.name
  privilege = select
  future_for = owner.name
}

control schemas {
  title = "Nobody creates objects in a schema through PUBLIC"
  severity = high
  for s in observe(pg.schema) {
    require no_public_create(s)
  }
}
"#;
    let dir = pg_stack("postgres-privileges", &cluster, body);
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(
        cluster.sql_in("app", "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto'"),
        "data"
    );
    assert_eq!(cluster.sql_in("app", "SELECT has_schema_privilege('app_reader', 'data', 'USAGE')"), "t");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    // Tables the owner makes later are readable at once: the default privileges grant them.
    cluster.sql_in(
        "app",
        "SET ROLE app_owner; CREATE TABLE data.orders (id int); CREATE TABLE data.lines (id int)",
    );
    assert_eq!(
        cluster.sql_in("app", "SELECT has_table_privilege('app_reader', 'data.lines', 'SELECT')"),
        "t"
    );
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    // A revoke by hand on one table, and default privileges dropped, are found and corrected.
    cluster.sql_in("app", "REVOKE SELECT ON data.lines FROM app_reader");
    cluster.sql_in(
        "app",
        "ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA data REVOKE SELECT ON TABLES FROM app_reader",
    );
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(text(&o).contains("+ table_grant.read"), "{}", text(&o));
    assert!(text(&o).contains("future_for = \"app_owner\""), "{}", text(&o));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(
        cluster.sql_in("app", "SELECT has_table_privilege('app_reader', 'data.lines', 'SELECT')"),
        "t"
    );
    cluster.sql_in("app", "SET ROLE app_owner; CREATE TABLE data.later (id int)");
    assert_eq!(
        cluster.sql_in("app", "SELECT has_table_privilege('app_reader', 'data.later', 'SELECT')"),
        "t"
    );

    // CREATE for PUBLIC on a schema fails the control, in any database of the server.
    cluster.sql_in("app", "GRANT CREATE ON SCHEMA data TO PUBLIC");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(4), "{}", text(&o));
    assert!(text(&o).contains("every role may create objects in schema data of app"), "{}", text(&o));

    // Declaring the revoke corrects it.
    let fixed = format!(
        "{body}\npg.schema_grant no_public_create {{ role = \"PUBLIC\"  database = app.name  schema = data.name  privilege = create  ensure = absent }}\n"
    );
    std::fs::write(
        dir.join("main.iade"),
        format!(
            "use std.postgres as pg\n\nprovider postgres main {{\n  url = \"{}\"\n}}\n\n{fixed}",
            cluster.url()
        ),
    )
    .expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(cluster.sql_in("app", "SELECT has_schema_privilege('public', 'data', 'CREATE')"), "f");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn marks_let_a_stack_prune_the_roles_it_dropped_and_refuse_a_role_another_stack_owns() {
    let cluster = Cluster::start("marks");
    let dir = pg_stack(
        "postgres-marks",
        &cluster,
        "stack billing { prune = true }\n\npg.role app { name = \"billing_app\" }\npg.role old { name = \"billing_old\" }\npg.database db { name = \"billing\"  owner = app.name }\n",
    );
    cluster.sql("CREATE ROLE hand_made");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(
        cluster.sql("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'billing_old'"),
        "managed by iade stack billing"
    );
    assert_eq!(
        cluster
            .sql("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'billing'"),
        "managed by iade stack billing"
    );

    // The source drops a role: it is pruned, and a role nobody declared is left alone.
    let source = std::fs::read_to_string(dir.join("main.iade")).expect("source");
    std::fs::write(dir.join("main.iade"), source.replace("pg.role old { name = \"billing_old\" }\n", ""))
        .expect("write");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(text(&o).contains("its mark proves it this stack's"), "{}", text(&o));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'billing_old'"), "0");
    assert_eq!(cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'hand_made'"), "1");

    // Another stack declaring the same role is refused, and told how to take it over.
    let other = pg_stack(
        "postgres-marks-other",
        &cluster,
        "stack reports {}\n\npg.role app { name = \"billing_app\"  createdb = true }\n",
    );
    let o = run(&other, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("it belongs to stack `billing`"), "{}", text(&o));
    assert!(text(&o).contains("COMMENT ON ROLE \"billing_app\" IS NULL"), "{}", text(&o));
    assert_eq!(cluster.sql("SELECT rolcreatedb FROM pg_roles WHERE rolname = 'billing_app'"), "f");

    // A role made by hand is adopted: marked, not reported as drift.
    let adopt =
        pg_stack("postgres-marks-adopt", &cluster, "stack ops {}\n\npg.role hand { name = \"hand_made\" }\n");
    let o = run(&adopt, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(
        cluster.sql("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'hand_made'"),
        "managed by iade stack ops"
    );
    for d in [&dir, &other, &adopt] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_watching_engine_corrects_a_hand_made_superuser_within_one_interval() {
    let cluster = Cluster::start("watch");
    let dir = pg_stack("postgres-watch", &cluster, "pg.role app { name = \"watched_app\"  login = true }\n");
    let mut child = Command::new(iade_bin())
        .args(["converge", "--watch", "--interval", "1s"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("the role", &|| {
        cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'watched_app'") == "1"
    });
    cluster.sql("ALTER ROLE watched_app SUPERUSER");
    let changed = Instant::now();
    wait_for("the correction", &|| {
        cluster.sql("SELECT rolsuper FROM pg_roles WHERE rolname = 'watched_app'") == "f"
    });
    let latency = changed.elapsed();
    assert!(latency < Duration::from_secs(5), "corrected after {latency:?}, the interval is 1 s");
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    assert_eq!(child.wait().expect("stops").code(), Some(0));
    let j = journal(&dir);
    let drift: Vec<_> = runs(&dir)
        .iter()
        .flat_map(|r| j.drift(r.id).expect("drift"))
        .filter(|d| d.resource == "role.app" && d.field == "superuser")
        .collect();
    assert!(drift.iter().any(|d| d.corrected_ms.is_some()), "{drift:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_converge_of_200_roles_killed_in_the_middle_is_finished_by_the_next_one() {
    let cluster = Cluster::start("kill");
    let mut body = String::from("pg.role group { name = \"bulk_group\" }\n");
    for i in 0..200 {
        body.push_str(&format!(
            "pg.role r{i} {{ name = \"bulk_{i:03}\"  login = true  connection_limit = 3  member_of = [group.name] }}\n"
        ));
    }
    let dir = pg_stack("postgres-kill", &cluster, &body);
    // Another session creates one of the roles and holds its transaction open: the engine's
    // CREATE waits on it, in the middle of its wave, until the engine is killed.
    let mut blocker = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(cluster.bin.join("psql"))
        .args(cluster.psql_args("postgres", &["-q"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("psql");
    let mut input = blocker.stdin.take().expect("stdin");
    writeln!(input, "BEGIN; CREATE ROLE bulk_150;").expect("write");
    input.flush().expect("flush");
    let mut engine = Command::new(iade_bin())
        .args(["converge"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'iade' AND wait_event_type = 'Lock'",
    ) != "1"
    {
        assert!(Instant::now() < deadline, "the engine never waited on the held role");
        std::thread::sleep(Duration::from_millis(20));
    }
    rustix::process::kill_process(rustix::process::Pid::from_child(&engine), rustix::process::Signal::KILL)
        .expect("kill -9");
    let _ = engine.wait();
    writeln!(input, "ROLLBACK;").expect("write");
    drop(input);
    let _ = blocker.wait();
    let made: usize =
        cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'bulk\\_%'").parse().expect("count");
    assert!(made < 201, "the killed run did not finish: {made} roles");
    assert!(runs(&dir).iter().any(|r| r.status != iade_journal::RunStatus::Done), "no interrupted run");

    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(
        cluster.sql("SELECT count(*) FROM pg_roles r WHERE r.rolname LIKE 'bulk\\_%' AND r.rolname <> 'bulk_group' AND r.rolcanlogin AND r.rolconnlimit = 3 AND pg_has_role(r.oid, 'bulk_group', 'MEMBER')"),
        "200"
    );
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "the server equals intent: {}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_reached_over_tls_is_verified_against_the_stacks_ca() {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let certs = std::env::temp_dir().join(format!("iade-pg-tls-certs-{}", std::process::id()));
    std::fs::create_dir_all(&certs).expect("dir");
    let make_cert = |name: &str| {
        let o = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost"])
            .arg("-keyout")
            .arg(certs.join(format!("{name}.key")))
            .arg("-out")
            .arg(certs.join(format!("{name}.crt")))
            .output()
            .expect("openssl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    make_cert("server");
    make_cert("stranger");
    let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&certs).status().expect("chown");
    assert!(chown.success());
    std::fs::set_permissions(certs.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let options = format!(
        "-c listen_addresses=localhost -c log_connections=on -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        certs.join("server.crt").display(),
        certs.join("server.key").display()
    );
    let cluster = Cluster::start_with("tls", &options, port);
    let source = |ca: &str| {
        format!(
            "use std.postgres as pg\n\nprovider postgres main {{\n  url = \"postgres://postgres@localhost:{port}/postgres?sslmode=require\"\n  tls_ca = \"{}\"\n}}\n\npg.role app {{ name = \"tls_app\" }}\n",
            certs.join(ca).display()
        )
    };
    let dir = stack("postgres-tls", &source("stranger.crt"));
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("certificate verify failed"), "{}", text(&o));
    assert_eq!(cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'tls_app'"), "0");

    std::fs::write(dir.join("main.iade"), source("server.crt")).expect("write");
    let o = run(&dir, &["converge"], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'tls_app'"), "1");
    let log = std::fs::read_to_string(cluster.dir.join("log")).expect("server log");
    assert!(
        log.lines().any(|l| l.contains("application_name=iade") && l.contains("SSL enabled")),
        "the engine's connection was not encrypted:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&certs);
}

#[test]
fn imported_roles_and_databases_plan_nothing_and_no_password_is_written() {
    let cluster = Cluster::start("import");
    cluster.sql("CREATE ROLE readers");
    cluster.sql("CREATE ROLE \"odd name\" LOGIN CONNECTION LIMIT 4 PASSWORD 'hunter2' VALID UNTIL '2031-05-01 12:00:00+00' IN ROLE readers");
    cluster.sql("CREATE DATABASE shop OWNER readers");
    let dir = stack("postgres-import", "");
    let o = run(
        &dir,
        &[
            "import",
            "role",
            "odd name",
            "readers",
            "--url",
            &cluster.url().replace("postgres@", "postgres:topsecret@"),
        ],
        &[],
    );
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let roles = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!roles.contains("topsecret") && !roles.contains("SCRAM"), "{roles}");
    assert!(roles.contains("password: set on the server, not imported"), "{roles}");
    let o = run(&dir, &["import", "database", "shop", "--url", &cluster.url()], &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let database = String::from_utf8_lossy(&o.stdout).into_owned();
    let body =
        database.split_once("pg.database").map(|(_, b)| format!("pg.database{b}")).expect("a database");
    std::fs::write(dir.join("main.iade"), format!("{roles}\n{body}")).expect("write");
    let o = run(&dir, &["plan"], &[]);
    assert_eq!(code(&o), Some(0), "an imported stack has nothing to change: {}", text(&o));

    let o = run(&dir, &["import", "role", "nobody", "--url", &cluster.url()], &[]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no role `nobody` on the server"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
