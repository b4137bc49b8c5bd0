//! User and group names, read from `/etc/passwd` and `/etc/group` (the local databases; a
//! directory service is out of scope).

use std::collections::HashMap;

#[derive(Debug, Default)]
pub(crate) struct Names {
    user_by_id: HashMap<u32, String>,
    user_by_name: HashMap<String, u32>,
    group_by_id: HashMap<u32, String>,
    group_by_name: HashMap<String, u32>,
}

fn parse(text: &str) -> (HashMap<u32, String>, HashMap<String, u32>) {
    let mut by_id = HashMap::new();
    let mut by_name = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split(':');
        let (Some(name), Some(_), Some(id)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Ok(id) = id.parse::<u32>() else { continue };
        by_id.entry(id).or_insert_with(|| name.to_string());
        by_name.insert(name.to_string(), id);
    }
    (by_id, by_name)
}

impl Names {
    pub(crate) fn load() -> Names {
        let (user_by_id, user_by_name) = parse(&std::fs::read_to_string("/etc/passwd").unwrap_or_default());
        let (group_by_id, group_by_name) = parse(&std::fs::read_to_string("/etc/group").unwrap_or_default());
        Names { user_by_id, user_by_name, group_by_id, group_by_name }
    }

    /// The user's name, or its number when it has none.
    pub(crate) fn user(&self, uid: u32) -> String {
        self.user_by_id.get(&uid).cloned().unwrap_or_else(|| uid.to_string())
    }

    pub(crate) fn group(&self, gid: u32) -> String {
        self.group_by_id.get(&gid).cloned().unwrap_or_else(|| gid.to_string())
    }

    /// A user by name, or by number written as digits.
    pub(crate) fn uid(&self, name: &str) -> Option<u32> {
        self.user_by_name.get(name).copied().or_else(|| name.parse().ok())
    }

    pub(crate) fn gid(&self, name: &str) -> Option<u32> {
        self.group_by_name.get(name).copied().or_else(|| name.parse().ok())
    }
}
