//! The registry of diagnostic codes. Every code has one entry here, an explanation that
//! `iade explain CODE` prints, and a golden test that triggers it.

use std::fmt;

use crate::Severity;

/// A stable diagnostic code such as `E0004`. `E` codes are errors, `W` codes warnings.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code(&'static str);

impl Code {
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    pub fn severity(self) -> Severity {
        if self.0.starts_with('W') { Severity::Warning } else { Severity::Error }
    }

    /// The registry entry of this code.
    pub fn info(self) -> Option<&'static CodeInfo> {
        lookup(self.0)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(Debug)]
pub struct CodeInfo {
    pub code: Code,
    /// A short title, lowercase, like a diagnostic message.
    pub title: &'static str,
    /// What the code means, why it matters and how to fix it, with an example.
    pub explanation: &'static str,
}

macro_rules! codes {
    ($($name:ident = $title:literal, $expl:literal;)*) => {
        $(pub const $name: Code = Code(stringify!($name));)*
        static REGISTRY: &[CodeInfo] = &[
            $(CodeInfo { code: $name, title: $title, explanation: $expl },)*
        ];
    };
}

codes! {
        E0001 = "file is not valid UTF-8",
"iade sources must be UTF-8 text. The file contains a byte sequence that is not valid UTF-8,
often because it was saved in a legacy encoding (Latin-1, Windows-1252) or is not a text file.

Fix: re-save the file as UTF-8, for example with `iconv -f latin1 -t utf-8`.";

        E0002 = "file contains a NUL byte",
"A NUL byte never appears in iade source text; a file that contains one is almost certainly
binary (an archive, an image, a compiled file) that was given to iade by mistake.

Fix: check the path; only `.iade` text files belong in a stack.";

        E0003 = "unexpected character",
"The lexer met a character that starts no token of the language, such as `@`, `;` or a
backtick.

    mode = 0o644;   # error: `;` is not used in iade

Entries are separated by newlines or spaces (a comma is allowed); strings use double quotes.";

        E0004 = "unterminated string",
"A string literal was opened with `\"` but not closed on the same line. Ordinary strings cannot
span lines.

    content = \"port = 8080        # error: missing closing quote

Fix: close the string with `\"`, or use a multi-line string:

    content = \"\"\"
      port = 8080
      \"\"\"";

        E0005 = "unterminated interpolation",
"An interpolation `${` inside a string was not closed with `}` before the string ended.

    path = \"${root/logs\"        # error: missing `}`

Fix: close it: `\"${root}/logs\"`. To write a literal `${` (for a shell command), write `$${`.";

        E0006 = "invalid escape sequence",
"Inside strings, a backslash starts an escape. The valid escapes are `\\\\`, `\\\"`, `\\n`, `\\r`,
`\\t`, `\\0`, `\\$` and `\\u{XXXX}` (1 to 6 hex digits naming a Unicode scalar value).

    path = \"C:\\data\"      # error: `\\d` is not an escape

Fix: double the backslash (`\\\\`) or use one of the escapes above.";

        E0007 = "invalid number literal",
"Integer literals are decimal (`8080`), hexadecimal (`0xff`), octal (`0o755`) or binary
(`0b1010`), with optional `_` between digits. Each digit must be valid for its radix, a radix
prefix needs at least one digit, a number cannot run into letters, and iade has no
floating-point numbers.

    mode = 0o855     # error: `8` is not an octal digit";

        E0008 = "integer literal out of range",
"Integers are 64-bit signed: the largest literal is 9223372036854775807
(0x7fff_ffff_ffff_ffff).

Fix: use a smaller value, or a string if the number is an identifier rather than a quantity.";

        E0009 = "unclosed delimiter",
"A `{`, `(` or `[` was opened and never closed. iade reports the delimiter that is not closed,
not the end of the file, using indentation to tell which block lost its `}`.

    directory app {
      path = \"/srv/app\"
                          # error: `{` above is never closed
    file config { ... }

Fix: add the missing closing delimiter.";

        E0010 = "unexpected closing delimiter",
"A closing `}`, `)` or `]` appears where nothing is open, or does not match the delimiter that is
open.

    mode = 0o644 }       # error: nothing to close here

Fix: remove it, or open the block it was meant to close.";

        E0011 = "nesting too deep",
"Expressions and blocks may nest at most 256 levels deep. Brackets, braces, parentheses,
strings inside interpolations, unary operators and chains of binary operators each count as a
level. The limit keeps every tool (checker, formatter, language server) fast and safe on
machine-generated input.

Fix: split the expression with `let` bindings.";

        E0012 = "syntax error",
"The parser expected one thing and found another. The message names what was expected and the
label points at what was found.

    param port int = 80      # error: expected `:`, found `int`

Fix: follow the `help` line; `docs/language.md` describes every construct.";

        E0013 = "comparison operators cannot be chained",
"Comparisons (`== != < <= > >= in`) are non-associative: `a < b < c` does not mean what it looks
like, so it is rejected.

Fix: write `a < b and b < c`, or add parentheses if you really mean to compare a boolean.";

        E0014 = "construct not allowed here",
"Some constructs only make sense in one place:
  - `require` only inside a `policy` or `control`;
  - field declarations (`identity path: path`) only inside a `kind`;
  - `use`, `param`, `kind`, `rule`, `policy`, `control` and `provider` only at the top level;
  - resource declarations at the top level or inside a top-level `for`/`if`, never inside
    another resource.

Fix: move the construct to where it belongs.";

        E0015 = "missing value",
"An entry `name =` has no value before the next entry starts.

    path =
    mode = 0o644      # error: `path` has no value

Fix: write the value after `=`, or delete the entry to leave the field unmanaged.";

        E0016 = "empty interpolation",
"`${}` interpolates nothing. Write an expression between the braces, or `$${}` for a literal
`${}`.";

        E0017 = "interpolation not allowed here",
"Some strings must be known before anything is evaluated: module paths in `use`, control ids
and the keys of block entries. They cannot contain `${…}`.

    use \"./modules/${name}.iade\" as web     # error

Fix: write the string out. Records used as maps may still have interpolated keys.";

        E0018 = "malformed multi-line string",
"A multi-line string starts with `\"\"\"` at the end of a line and ends with `\"\"\"` on a line of
its own. The indentation of the closing line is removed from every content line, so every
non-blank content line must start with that indentation.

    let motd = \"\"\"
      Welcome
      \"\"\"

Fix: move text after the opening `\"\"\"` to the next line, put the closing `\"\"\"` on its own line,
and indent content at least as far as the closing line.";

        E0101 = "unknown name",
"A name was used that nothing in scope declares: no `let`, `param`, resource, rule or provider of
that name in the stack, and no `use` that imports it. Names are shared by every top-level file of
a stack; a module file (`use \"./x.iade\" as x`) has names of its own, reached as `x.name`.

    let base = \"${roo}/current\"     # error: unknown name `roo` (did you mean `root`?)

Fix: correct the spelling (the help suggests the closest name), declare the name, or import it.";

        E0102 = "unknown kind or type",
"A resource declaration names a kind that is not in scope, or a type annotation names a type that
does not exist. Kinds come from modules: `use std.fs.{file, directory}` brings `file` and
`directory` into scope; `use std.postgres as pg` makes `pg.role` available.

    fiel config { path = \"/etc/app.conf\" }     # error: unknown kind `fiel`

Fix: correct the name or add the `use` that imports the kind.";

        E0103 = "unknown field",
"A resource body sets a field its kind does not have, or an expression reads one
(`f.mod`). Each kind lists its fields in `stdlib/`; `iade explain` cannot list them, but the
help line does.

    file config { path = \"/etc/app.conf\"  mod = 0o644 }    # error: did you mean `mode`?

Fix: use one of the kind's fields.";

        E0104 = "declared twice",
"The same name is declared twice where names must be unique: two `let`/`param`/`rule`/`kind` of
one name in a stack, one field set twice in a body, or a kind declaring one field twice. Every
top-level file of a stack shares one namespace.

Fix: rename or remove one of the two declarations.";

        E0105 = "unknown module",
"A `use` names a module that does not exist: a standard library module other than `std.fs`,
`std.exec`, `std.postgres` and `std.rules`, or a module file that cannot be read. Module files are
relative to the file that uses them and must be named with `as`.

    use std.filesystem.{file}              # error: unknown module
    use \"./modules/logging.iade\" as logging

Fix: correct the module path.";

        E0106 = "import cycle",
"Two modules import each other, directly or through others. Their values could then be defined in
terms of each other, which has no meaning.

Fix: move what both need into a third module that neither imports.";

        E0107 = "module has no such name",
"A `use` imports a name, or an expression reads `module.name`, that the module does not declare.

    use std.fs.{fiel}     # error: module `std.fs` has no `fiel` (did you mean `file`?)

Fix: correct the name; the note lists what the module declares.";

        E0108 = "ambiguous name",
"A bare name refers to more than one thing: for example a `directory app` and a `file app`. A
resource's plain name works only while it is unique in the stack.

    directory app { … }
    file app { … }
    let p = app.path     # error: say `directory.app.path` or `file.app.path`

Fix: write the full id `KIND.NAME`, or rename one of them.";

        E0109 = "not a value",
"A name that is not a value (a kind, a rule, a module or a provider) is used where a value is
expected.

    let k = file                 # error: `file` is a kind
    require not_world_writable   # error: a rule must be called: not_world_writable(f)

Fix: use the name the way its help line shows.";

        E0110 = "unknown function",
"A call names neither a builtin function nor a rule. The builtins are listed in the language
reference (len, join, upper, lower, basename, dirname, contains, keys, secret, include, intent,
observe, …).

Fix: correct the name, or declare the rule.";

        E0111 = "wrong arguments",
"A call passes the wrong number of arguments, a named argument where only positional ones are
accepted, or an argument a builtin does not take (`observe` takes a kind and `under = path`).

Fix: call it as the help line's signature shows.";

        E0201 = "type mismatch",
"A value does not have the type its place requires: a resource field, a typed `let` or `param`, a
rule argument, or an operator's operand. The message names the value that failed.

    file config { path = \"/etc/app.conf\"  mode = \"644\" }   # error: expected mode, found string \"644\"

Fix: give a value of the expected type (a mode is an integer, usually written in octal: 0o644).";

        E0202 = "missing identity field",
"A resource does not set one of its kind's identity fields: the fields that say which object in the
environment it is (a file's `path`, a role's `name`). Without them iade cannot observe the object.

Fix: set the field.";

        E0203 = "constraint violated",
"A field's value breaks the constraint its kind declares with `where`. The message names the value
and the constraint.

    directory data { path = \"/srv/data\"  mode = 0o17777 }   # mode must be <= 0o7777

Fix: give a value inside the constraint.";

        E0204 = "observed-only field set",
"A resource body sets a field its kind declares `observed`: a fact iade reads from the environment
(a file's `sha256`, `size`, `mtime`), never something it can change.

Fix: remove the line. To check such a field, write a rule and use it in a `control`.";

        E0205 = "invalid or missing param value",
"A `param` got a value that does not match its type (from `--param name=value` or the environment
variable `IADE_PARAM_NAME`), or it has no default and no value was given.

    param port: 8080 | 8443 = 8080
    $ iade check --param port=80     # error: expected 8080 | 8443

Fix: give a value of the param's type.";

        E0206 = "invalid generated name",
"A resource name built by interpolation (inside `for`) evaluated to something that cannot be an id:
empty, or with characters other than `A-Z a-z 0-9 _ -`, or not a string at all. Ids appear in
plans, logs and the journal, so they are kept plain.

    for user in [\"alice smith\"] { file \"key_${user}\" { … } }   # error: a space

Fix: derive the name from a value that is a plain word, or replace the other characters.";

        E0207 = "evaluation error",
"An expression could not be evaluated: division by zero, an index out of range, a missing map key,
an operator applied to values it does not take, a file that `include` cannot read, or a value that
must be known before observation (the list of a `for` that generates resources) but is not.

Fix: the message says which value was wrong; correct the expression or its inputs.";

        E0208 = "intent or observe used outside a check",
"`intent(kind)` lists intended resources and exists only in policies and controls; `observe(kind,
under = …)` lists observed objects and exists only in controls, which the engine evaluates on what
it observed. Resource attributes cannot depend on either.

Fix: move the check into a `policy` (intent) or a `control` (observation).";

        E0209 = "invalid declaration",
"A `policy`, `control` or `kind` has a setting it does not take or a setting with a wrong value: a
policy's `severity` is `deny` or `warn`; a control needs a `severity` of `low`, `medium`, `high` or
`critical` and may have a plain-string `title`; a kind's fields are `identity`, `desired` or
`observed`. A `waive` needs an `until` date that exists, a reason, and an object quoted whole or
not at all.

Fix: follow the help line.";

        E0210 = "secret identity",
"An identity field (a file's `path`, an exec's `name`) is built from a secret. An identity names
the object in plans, history and the journal, where secrets are never shown, and iade could not
say which object it manages.

    file token { path = \"/run/${secret(\"DIR\")}/token\"  content = secret(\"TOKEN\") }   # error

Fix: build the identity from plain values; keep secrets in the fields that need them.";

        E0211 = "limit reached",
"Evaluating the stack passed one of its limits: more resources than `max_resources`, an
evaluation longer than `max_steps`, a string longer than `max_string_bytes` or a list longer than
`max_list_length`. The limits keep a typo (a `range` inside a `range`) from exhausting the machine
that checks or converges the stack.

    for i in range(100000) { for j in range(100000) { file \"f_${i}_${j}\" { … } } }   # error

Fix: if the stack really needs more, raise the limit in its settings:
`stack NAME { max_resources = 500000 }`.";

        E0212 = "stack declared twice",
"A stack has at most one `stack` item, in one of its own top-level files: it names the stack and
holds its settings. A second one, or one in a module file, is an error.

Fix: merge the settings into one `stack` item in the stack's own files.";

        E0213 = "missing param",
"A component's params without a default must be set by every instance, like the required fields
of a resource:

    component vhost(port: int, root: path = \"/srv/www\") { … }
    vhost api { root = \"/srv/api\" }      # E0213: `port` is not set

Fix: set the param in the instance's body (`port = 8080`), or give it a default in the
component's declaration.";

        E0214 = "name clash in a component",
"Inside a component, `name` is the instance's name, so a param, `let` or loop variable may not
be called `name`. Members of a component share one namespace whatever their kinds (they are
reached as `vhost.api.conf`), and a member may not have the name of a param.

Fix: rename the param, variable or member.";

        E0215 = "components nest too deep",
"An instance of a component declared (directly or through other components) inside that
component would expand forever. Instances may nest at most 32 deep.

Fix: remove the instance that makes the component contain itself.";

        E0216 = "decimal mode literal",
"A mode written as a decimal literal is almost always a mistake: `mode = 644` is the number
644, which is 0o1204 in octal (sticky bit set, the owner cannot read). Where a `mode` is
expected, an integer literal must be written in octal.

Fix: write `0o644`. Params, computed values and comparisons are not affected.";

        E0217 = "template error",
"A template (`template(path, vars)`) is text with `${…}` expressions over the names of its
record of variables and the builtins. A name the record lacks, or an expression that does not
parse or evaluate, is reported at its line in the template. Write `$${` for a literal `${`.

Fix: pass the missing name in the record (`template(\"site.conf.tmpl\", { port = 8080 })`) or
correct the template.";

        E0218 = "cannot be refreshed",
"`notify = [target]` asks the target to refresh when this resource changes. Only a resource
with a refresh action can be notified: an `exec` (its `refresh` command, or its `apply` when
`refresh` is unset), or a component instance with such members.

Fix: notify an `exec` that reloads the service, or use `after` for ordering alone.";

        E0219 = "cannot read a source file",
"`source = \"files/logo.png\"` takes a file's content from a file of the stack, relative to the
declaring file. The file must exist and be readable when the stack is compiled.

Fix: correct the path, or add the file to the stack.";

        E0301 = "duplicate resource id",
"Two resources have the same id `KIND.NAME`, possibly because a `for` generated the same name
twice. Ids must be unique: they are how plans, history and the journal name resources.

Fix: rename one of them; in a `for`, include the loop variable in the name.";

        E0302 = "duplicate identity",
"Two resources manage the same object in the environment: two files with one path, two roles
with one name. They would fight over it at every run, so this is an error before anything runs.

Fix: remove one of them, or change its identity.";

        E0303 = "dependency cycle",
"Resources (or values) refer to each other in a circle, through attribute references or `after`.
There is no order in which to apply them. The message prints the whole cycle with each step.

    directory a { path = \"${b.path}/a\" }
    directory b { path = \"${a.path}/b\" }    # error: directory.a → directory.b → directory.a

Fix: remove one of the references.";

        E0304 = "invalid meta-attribute",
"A meta-attribute has a value it does not take: `after` lists resources, `manage` is `enforce` or
`observe`, and `provider` names a `provider` block.

Fix: follow the help line.";

        E0401 = "policy violation",
"A `deny` policy's requirement fails on the intent: the stack declares something the policy
forbids. A denied stack is never planned or applied. The diagnostic points at the attribute that
failed and at the rule, and its notes show the values of the sub-expressions that made it fail.

    file config { path = \"/srv/app/config.toml\"  mode = 0o666 }
    # error: policy `safe_files` denies `file.config`: /srv/app/config.toml is world-writable

Fix: change the intent so the rule holds.";

        W0001 = "doc comment documents nothing",
"A doc comment (`## ...`) documents the item, field or entry that follows it. This one is
followed by nothing (end of block or file), so no hover will ever show it.

Fix: move it above an item, or turn it into a plain comment with a single `#`.";

        W0401 = "policy warning",
"A `warn` policy's requirement fails on the intent. Nothing is blocked; the warning says what
would be wrong and where, like a `deny` violation does.

Fix: change the intent, or accept the warning.";

        W0402 = "policy cannot decide",
"A policy's requirement depends on a value that is not known on intent: an unmanaged field (one the
resource does not set), or a value known only after observation. Unknown is not a pass: it is
reported, and the same rule in a `control` decides it on what is observed.

Fix: set the field in the resource if the policy should hold before anything changes.";
}

/// Every registered code, in order.
pub fn registry() -> &'static [CodeInfo] {
    REGISTRY
}

/// The registry entry for `code` (case-insensitive), if any.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    REGISTRY.iter().find(|c| c.code.0.eq_ignore_ascii_case(code))
}
