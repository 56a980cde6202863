//! Who may reach which server. Every listing (panel, SSH menu, browser navigator) and every
//! connection attempt asks this module, so the rule lives in one place:
//!
//! - administrators reach every server;
//! - other users reach the servers granted to them or to a user group they belong to, where a
//!   grant of a server group covers every server in it and in all groups below it;
//! - disabled users reach nothing.
//!
//! Nothing is cached: a revoked grant takes effect at the next question.

use std::collections::{HashMap, HashSet};

use crate::storage::{Result, ServerGroupRow, ServerRow, Storage, UserRow};

/// The ids of `roots` and of every group below them.
pub fn with_descendants(groups: &[ServerGroupRow], roots: &HashSet<i64>) -> HashSet<i64> {
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for g in groups {
        if let Some(parent) = g.parent_id {
            children.entry(parent).or_default().push(g.id);
        }
    }
    let mut out = HashSet::new();
    let mut stack: Vec<i64> = roots.iter().copied().collect();
    while let Some(id) = stack.pop() {
        if out.insert(id)
            && let Some(kids) = children.get(&id)
        {
            stack.extend(kids);
        }
    }
    out
}

/// Every server `user` may reach, ordered by name.
pub async fn reachable_servers(storage: &Storage, user: &UserRow) -> Result<Vec<ServerRow>> {
    if !user.is_active() {
        return Ok(Vec::new());
    }
    let servers = storage.servers().await?;
    if user.role == "admin" {
        return Ok(servers);
    }

    let member_of: HashSet<i64> = storage.groups_of_user(user.id).await?.into_iter().collect();
    let mut group_roots = HashSet::new();
    let mut single = HashSet::new();
    for g in storage.grants().await? {
        let applies =
            g.user_id == Some(user.id) || g.user_group_id.is_some_and(|id| member_of.contains(&id));
        if !applies {
            continue;
        }
        if let Some(id) = g.server_group_id {
            group_roots.insert(id);
        }
        if let Some(id) = g.server_id {
            single.insert(id);
        }
    }
    let groups = with_descendants(&storage.server_groups().await?, &group_roots);
    Ok(servers
        .into_iter()
        .filter(|s| single.contains(&s.id) || groups.contains(&s.group_id))
        .collect())
}

/// [`reachable_servers`] with each server's group path (`prod/web`), for listings.
pub async fn reachable_with_paths(
    storage: &Storage,
    user: &UserRow,
) -> Result<Vec<(ServerRow, String)>> {
    let servers = reachable_servers(storage, user).await?;
    let paths: HashMap<i64, String> = storage
        .server_groups()
        .await?
        .into_iter()
        .map(|g| (g.id, g.path))
        .collect();
    Ok(servers
        .into_iter()
        .map(|s| {
            let path = paths.get(&s.group_id).cloned().unwrap_or_default();
            (s, path)
        })
        .collect())
}

/// The server called `name` if `user` may reach it. A server that exists but is not granted
/// gives the same `None` as one that does not exist, so names cannot be probed.
pub async fn reachable_server(
    storage: &Storage,
    user: &UserRow,
    name: &str,
) -> Result<Option<ServerRow>> {
    Ok(reachable_servers(storage, user)
        .await?
        .into_iter()
        .find(|s| s.name == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: i64, parent: Option<i64>) -> ServerGroupRow {
        ServerGroupRow {
            id,
            parent_id: parent,
            name: format!("g{id}"),
            path: format!("g{id}"),
        }
    }

    #[test]
    fn descendants_cover_the_whole_subtree_only() {
        let groups = vec![
            group(1, None),
            group(2, Some(1)),
            group(3, Some(2)),
            group(4, None),
        ];
        let got = with_descendants(&groups, &HashSet::from([2]));
        assert_eq!(got, HashSet::from([2, 3]));
        let got = with_descendants(&groups, &HashSet::from([1]));
        assert_eq!(got, HashSet::from([1, 2, 3]));
    }
}
