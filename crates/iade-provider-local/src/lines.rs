//! The text edits of `line` resources: find the managed line, replace, insert or remove it,
//! keeping the file's line endings. Pure functions over the text; `fs.rs` reads and writes.

use iade_intent::Value;
use iade_provider::{ProviderError, Target};
use regex::Regex;

/// One `line` resource's edit.
#[derive(Debug)]
pub(crate) struct LineEdit {
    pub matcher: Regex,
    /// `None`: remove every matching line.
    pub line: Option<String>,
    pub insert_after: Option<Regex>,
    pub insert_before: Option<Regex>,
}

fn regex(target: &Target, field: &str) -> Result<Option<Regex>, ProviderError> {
    let text = match target.intended.get(field).or_else(|| target.identity.get(field)) {
        Some(Value::Str(s)) => s.to_string(),
        _ => return Ok(None),
    };
    Regex::new(&text)
        .map(Some)
        .map_err(|e| ProviderError::permanent(format!("`{field}` is not a valid regular expression: {e}")))
}

impl LineEdit {
    /// The edit a target asks for; a permanent error when a pattern is invalid or the line does
    /// not match its own `match` (the next run would add it again).
    pub fn of(target: &Target) -> Result<LineEdit, ProviderError> {
        let matcher = regex(target, "match")?
            .ok_or_else(|| ProviderError::permanent("a line needs a `match` pattern"))?;
        let line = if target.wants_present() {
            match target.intended.get("line") {
                Some(Value::Str(s)) => Some(s.to_string()),
                _ => return Err(ProviderError::permanent("a present line needs its `line`")),
            }
        } else {
            None
        };
        if let Some(l) = &line
            && !matcher.is_match(l)
        {
            return Err(ProviderError::permanent(format!(
                "the line {l:?} does not match its own `match` ({}), so every run would add it again",
                matcher.as_str()
            )));
        }
        Ok(LineEdit {
            matcher,
            line,
            insert_after: regex(target, "insert_after")?,
            insert_before: regex(target, "insert_before")?,
        })
    }
}

/// A line's text without its line break (`\n` or `\r\n`).
fn body(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// The first line that matches, without its line break.
pub(crate) fn first_match<'t>(text: &'t str, matcher: &Regex) -> Option<&'t str> {
    text.split_inclusive('\n').map(body).find(|l| matcher.is_match(l))
}

/// The text with the edit made. A new line takes the file's line ending (CRLF when its first
/// line ends so); appending to a text without a final line break adds one first.
pub(crate) fn apply(text: &str, edit: &LineEdit) -> String {
    let eol = match text.split_inclusive('\n').next() {
        Some(first) if first.ends_with("\r\n") => "\r\n",
        _ => "\n",
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(wanted) = &edit.line else {
        return lines.into_iter().filter(|l| !edit.matcher.is_match(body(l))).collect();
    };
    if let Some(i) = lines.iter().position(|l| edit.matcher.is_match(body(l))) {
        let ending = &lines[i][body(lines[i]).len()..];
        let mut out: String = lines[..i].concat();
        out.push_str(wanted);
        out.push_str(ending);
        out.extend(lines[i + 1..].iter().copied());
        return out;
    }
    let new_line = format!("{wanted}{eol}");
    let at = |re: &Option<Regex>| re.as_ref().and_then(|re| lines.iter().position(|l| re.is_match(body(l))));
    let insert = |i: usize| {
        let mut out: String = lines[..i].concat();
        // A last line without a break gets one before the new line follows it.
        if i > 0 && !out.ends_with('\n') {
            out.push_str(eol);
        }
        out.push_str(&new_line);
        out.extend(lines[i..].iter().copied());
        out
    };
    if let Some(i) = at(&edit.insert_after) {
        return insert(i + 1);
    }
    if let Some(i) = at(&edit.insert_before) {
        return insert(i);
    }
    insert(lines.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(matcher: &str, line: Option<&str>, after: Option<&str>, before: Option<&str>) -> LineEdit {
        LineEdit {
            matcher: Regex::new(matcher).expect("regex"),
            line: line.map(str::to_string),
            insert_after: after.map(|a| Regex::new(a).expect("regex")),
            insert_before: before.map(|b| Regex::new(b).expect("regex")),
        }
    }

    #[test]
    fn the_first_match_is_replaced_and_nothing_else_changes() {
        let e = edit(r"^PermitRootLogin\s", Some("PermitRootLogin no"), None, None);
        let text = "# x\nPermitRootLogin yes\nPort 22\nPermitRootLogin maybe\n";
        assert_eq!(apply(text, &e), "# x\nPermitRootLogin no\nPort 22\nPermitRootLogin maybe\n");
        assert_eq!(first_match(text, &e.matcher), Some("PermitRootLogin yes"));
    }

    #[test]
    fn a_missing_line_is_appended_inserted_after_or_before() {
        let e = edit("^b=", Some("b=2"), None, None);
        assert_eq!(apply("a=1\n", &e), "a=1\nb=2\n");
        assert_eq!(apply("a=1", &e), "a=1\nb=2\n", "a break is added before appending");
        assert_eq!(apply("", &e), "b=2\n");
        let e = edit("^b=", Some("b=2"), Some("^a="), None);
        assert_eq!(apply("a=1\nc=3\n", &e), "a=1\nb=2\nc=3\n");
        let e = edit("^b=", Some("b=2"), Some("^nothing"), Some("^c="));
        assert_eq!(apply("a=1\nc=3\n", &e), "a=1\nb=2\nc=3\n");
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let e = edit("^b=", Some("b=2"), None, None);
        assert_eq!(apply("a=1\r\nb=1\r\n", &e), "a=1\r\nb=2\r\n");
        assert_eq!(apply("a=1\r\n", &e), "a=1\r\nb=2\r\n");
        assert_eq!(first_match("a=1\r\nb=1\r\n", &e.matcher), Some("b=1"));
    }

    #[test]
    fn absent_removes_every_matching_line() {
        let e = edit("^#", None, None, None);
        assert_eq!(apply("#a\nb\n#c\r\nd", &e), "b\nd");
    }
}
