//! The standard library, embedded in the binary: `(module, path shown in messages, source)`.
//! The sources live in `stdlib/` at the root of the repository; `--stdlib DIR` replaces them.

pub const EMBEDDED: &[(&str, &str, &str)] = &[
    ("std.fs", "<stdlib>/std/fs.iade", include_str!("../../../stdlib/std/fs.iade")),
    ("std.exec", "<stdlib>/std/exec.iade", include_str!("../../../stdlib/std/exec.iade")),
    ("std.pkg", "<stdlib>/std/pkg.iade", include_str!("../../../stdlib/std/pkg.iade")),
    ("std.postgres", "<stdlib>/std/postgres.iade", include_str!("../../../stdlib/std/postgres.iade")),
    ("std.rules", "<stdlib>/std/rules.iade", include_str!("../../../stdlib/std/rules.iade")),
    ("std.users", "<stdlib>/std/users.iade", include_str!("../../../stdlib/std/users.iade")),
];
