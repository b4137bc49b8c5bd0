//! "Did you mean" suggestions.

use std::sync::{Mutex, OnceLock, PoisonError};

/// How many edits a name of `length` characters may be from a candidate to be a likely typo.
fn limit(length: usize) -> usize {
    (length / 3).max(1)
}

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    closest_scored(name, candidates).map(|(_, c)| c)
}

/// [`closest`] with its distance from `name`: answers over parts of the candidates are combined
/// by [`nearer`], the least distance, then the least name, as [`closest`] does over all of them.
pub fn closest_scored<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<(usize, &'a str)> {
    let length = name.chars().count();
    let limit = limit(length);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        // The distance is at least the difference in length: a stack of thousands of names
        // compares only those of about the same length. A name has at most as many characters
        // as bytes and at least a quarter as many: most are ruled out without counting.
        .filter(|c| c.len() + limit >= length && c.len() / 4 <= length + limit)
        .filter(|c| c.chars().count().abs_diff(length) <= limit)
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
}

/// `did you mean `x`?` or nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// A large set of names searched for typos again and again: a stack of 100,000 resources in
/// which one renamed `let` is still used by every resource looks for the same name 100,000
/// times. The names are grouped by length once, when first searched, so a search compares only
/// those of about the typo's length; and each name's answer is kept.
///
/// A cache of a function of the names: it compares equal to any other, and a copy starts
/// empty.
#[derive(Default)]
pub struct Typos {
    /// Index: length in characters. Built on the first search.
    by_length: OnceLock<Vec<Vec<Box<str>>>>,
    answers: Mutex<rustc_hash::FxHashMap<Box<str>, Option<Scored>>>,
}

/// A suggestion and its distance from the name it is for.
pub type Scored = (usize, Box<str>);

impl Typos {
    /// The name of `names` closest to `name`, with its distance (see [`closest`]). `names`
    /// must be the same set at every call.
    pub fn closest<'a, I: IntoIterator<Item = &'a str>>(
        &self,
        name: &str,
        names: impl FnOnce() -> I,
    ) -> Option<Scored> {
        if let Some(known) = self.answers.lock().unwrap_or_else(PoisonError::into_inner).get(name) {
            return known.clone();
        }
        let answer = closest_scored(name, self.near(name, names)).map(|(d, c)| (d, Box::from(c)));
        self.answers.lock().unwrap_or_else(PoisonError::into_inner).insert(name.into(), answer.clone());
        answer
    }

    /// The names of about the length of `name`: the only ones that can be its typo.
    fn near<'s, 'a, I, F>(&'s self, name: &str, names: F) -> impl Iterator<Item = &'s str> + use<'s, 'a, I, F>
    where
        I: IntoIterator<Item = &'a str>,
        F: FnOnce() -> I,
    {
        let by_length = self.by_length.get_or_init(|| {
            let mut by_length: Vec<Vec<Box<str>>> = Vec::new();
            for n in names() {
                let length = n.chars().count();
                if by_length.len() <= length {
                    by_length.resize_with(length + 1, Vec::new);
                }
                by_length[length].push(n.into());
            }
            by_length
        });
        let length = name.chars().count();
        let limit = limit(length);
        let near = by_length.get(length.saturating_sub(limit)..(length + limit + 1).min(by_length.len()));
        near.unwrap_or_default().iter().flatten().map(|n| &**n)
    }
}

/// The closer of two answers: the least distance, then the least name.
pub fn nearer<'a>(a: Option<(usize, &'a str)>, b: Option<(usize, &'a str)>) -> Option<(usize, &'a str)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Clone for Typos {
    fn clone(&self) -> Self {
        Typos::default()
    }
}

impl PartialEq for Typos {
    fn eq(&self, _: &Typos) -> bool {
        true
    }
}

impl Eq for Typos {}

impl std::fmt::Debug for Typos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Typos")
    }
}

/// Levenshtein distance over characters, with a swap of two neighbours counting once.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{Typos, closest, closest_scored, nearer};

    #[test]
    fn a_typo_is_matched_to_the_closest_name_of_about_its_length() {
        let names = ["path", "mode", "owner", "content", "paths_of_every_file"];
        assert_eq!(closest("pth", names), Some("path"));
        assert_eq!(closest("mdoe", names), Some("mode"));
        assert_eq!(closest("contnet", names), Some("content"));
        assert_eq!(closest("path", names), None, "a name is not its own typo");
        assert_eq!(closest("p", names), None);
        assert_eq!(closest("paths_of_every_fil", names), Some("paths_of_every_file"));
    }

    #[test]
    fn lengths_are_counted_in_characters_not_bytes() {
        assert_eq!(closest("naive", ["naïve"]), Some("naïve"));
        assert_eq!(closest("日本語x", ["日本語", "日本"]), Some("日本語"));
        assert_eq!(closest("ab", ["日本語本"]), None);
    }

    const NAMES: &[&str] = &[
        "owner",
        "owners",
        "root",
        "svc_1",
        "svc_12",
        "svc_123",
        "path",
        "mode",
        "naïve",
        "日本語",
        "a",
        "ab",
        "content",
        "contents",
        "paths_of_every_file",
        "x",
        "layout",
        "o",
        "own",
    ];

    #[test]
    fn a_kept_answer_is_the_answer_of_a_search_over_every_name() {
        let typos = Typos::default();
        let queries = [
            "ownr",
            "owner",
            "rot",
            "svc_13",
            "svc_",
            "pth",
            "naive",
            "日本",
            "b",
            "contnt",
            "paths_of_every_fil",
            "zzzzzz",
            "",
            "lay_out",
            "ow",
            "日本語x",
            "svc_1234",
        ];
        // Each twice: the second answer is the kept one.
        for q in queries.iter().chain(&queries) {
            let kept = typos.closest(q, || NAMES.iter().copied());
            let searched = closest_scored(q, NAMES.iter().copied());
            assert_eq!(kept.as_ref().map(|(d, c)| (*d, &**c)), searched, "{q}");
        }
    }

    #[test]
    fn near_keeps_every_name_that_may_be_a_typo_and_no_name_too_long_or_short() {
        let typos = Typos::default();
        for q in ["ownr", "a", "svc_12", "日本", "paths_of_every_fil", ""] {
            let near: Vec<&str> = typos.near(q, || NAMES.iter().copied()).collect();
            let length = q.chars().count();
            for n in NAMES {
                let close = n.chars().count().abs_diff(length) <= (length / 3).max(1);
                assert_eq!(near.contains(n), close, "{q} and {n}");
            }
        }
    }

    #[test]
    fn answers_over_parts_combine_to_the_answer_over_all() {
        let (a, b) = NAMES.split_at(7);
        for q in ["ownr", "svc_13", "contnt", "ow"] {
            let parts = nearer(closest_scored(q, a.iter().copied()), closest_scored(q, b.iter().copied()));
            assert_eq!(parts, closest_scored(q, NAMES.iter().copied()), "{q}");
        }
    }
}
