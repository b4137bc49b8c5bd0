//! "Did you mean" suggestions.

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let length = name.chars().count();
    let limit = (length / 3).max(1);
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
        .map(|(_, c)| c)
}

/// `did you mean `x`?` or nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
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
    use super::closest;

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
}
