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

        W0001 = "doc comment documents nothing",
"A doc comment (`## ...`) documents the item, field or entry that follows it. This one is
followed by nothing (end of block or file), so no hover will ever show it.

Fix: move it above an item, or turn it into a plain comment with a single `#`.";
}

/// Every registered code, in order.
pub fn registry() -> &'static [CodeInfo] {
    REGISTRY
}

/// The registry entry for `code` (case-insensitive), if any.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    REGISTRY.iter().find(|c| c.code.0.eq_ignore_ascii_case(code))
}
