//! The PostgreSQL provider on a throwaway local server (a Unix socket), through the real
//! binary: 200 login roles in 4 group roles, each group granted CONNECT on the application's
//! database, USAGE on its schema and a privilege on every table of it (with default privileges
//! for the owner's future tables). Cold converge (from an empty server), no-op converge, and
//! drift repair of 5 roles made superusers by hand.
//!
//! Run with `cargo bench -p iade-cli --bench postgres`. Target: no-op ≤ 60 ms (including
//! starting the process and compiling the stack).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use iade_test_postgres::Cluster;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn stack(dir: &Path, url: &str) {
    let mut s = format!(
        "use std.postgres as pg\n\nprovider postgres main {{\n  url = \"{url}\"\n}}\n\npg.role owner {{ name = \"bench_owner\" }}\n\npg.database app {{ name = \"bench\"  owner = owner.name }}\n\npg.schema data {{ database = pg.database.app.name  name = \"data\"  owner = owner.name }}\n\n"
    );
    let privileges = ["select", "insert", "update", "delete"];
    for (g, privilege) in privileges.iter().enumerate() {
        s.push_str(&format!(
            "pg.role g{g} {{ name = \"bench_group_{g}\" }}\n\
             pg.grant connect{g} {{ role = g{g}.name  database = pg.database.app.name  privilege = connect }}\n\
             pg.schema_grant usage{g} {{ role = g{g}.name  database = pg.database.app.name  schema = data.name  privilege = usage }}\n\
             pg.table_grant tables{g} {{ role = g{g}.name  database = pg.database.app.name  schema = data.name  privilege = {privilege}  future_for = owner.name }}\n\n"
        ));
    }
    for i in 0..200 {
        s.push_str(&format!(
            "pg.role r{i} {{ name = \"bench_{i:03}\"  login = true  connection_limit = 10  member_of = [g{}.name] }}\n",
            i % 4
        ));
    }
    std::fs::write(dir.join("main.iade"), s).expect("write stack");
}

fn converge(dir: &Path) -> f64 {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_iade"))
        .arg("converge")
        .current_dir(dir)
        .output()
        .expect("iade runs");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ms
}

fn main() {
    let cluster = Cluster::start("bench");
    let dir = std::env::temp_dir().join(format!("iade-bench-postgres-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    stack(&dir, &cluster.url());
    // Cold: from an empty server each time (the roles and the database dropped by hand).
    let mut cold = Vec::new();
    for _ in 0..5 {
        cold.push(converge(&dir));
        cluster.sql("DROP DATABASE bench");
        cluster.sql(
            "DO $$ DECLARE r text; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'bench\\_%' LOOP EXECUTE format('DROP ROLE %I', r); END LOOP; END $$",
        );
        let _ = std::fs::remove_dir_all(dir.join(".iade"));
    }
    converge(&dir);
    cluster.sql_in(
        "bench",
        "SET ROLE bench_owner; CREATE TABLE data.t1 (id int); CREATE TABLE data.t2 (id int)",
    );
    converge(&dir);
    let noop: Vec<f64> = (0..15).map(|_| converge(&dir)).collect();
    let mut repair = Vec::new();
    for round in 0..10 {
        for k in 0..5 {
            cluster.sql(&format!("ALTER ROLE bench_{:03} SUPERUSER", round * 17 + k * 3));
        }
        repair.push(converge(&dir));
    }
    assert_eq!(cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'bench\\_%' AND rolsuper"), "0");
    println!("200 roles, 4 groups with database, schema and table privileges on a local server:");
    println!("  cold converge: median {:.1} ms", median(cold));
    println!("  no-op converge: median {:.1} ms (target ≤ 60 ms)", median(noop));
    println!("  drift repair of 5 roles: median {:.1} ms", median(repair));
    let _ = std::fs::remove_dir_all(&dir);
}
