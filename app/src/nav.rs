//! Navigation through the servers a user may reach: the group tree, the cursor, the fuzzy filter,
//! favourites and recently used servers.
//!
//! The SSH menu (drawn with ANSI sequences on the gateway) and the browser console's navigator
//! both drive a [`Navigator`] with [`Key`]s, so they behave alike. Nothing here draws or does
//! input/output.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A server as the navigator lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NavServer {
    pub name: String,
    /// Full group path such as `prod/web`.
    pub group_path: String,
    pub description: Option<String>,
}

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Back to the parent group.
    Up,
    Group {
        path: String,
        name: String,
        /// Servers in the group and below it.
        servers: usize,
    },
    Server {
        server: NavServer,
        favourite: bool,
        /// Listed in the "recently used" part at the top.
        recent: bool,
    },
}

/// A key press, already decoded from whatever the terminal or browser sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Up,
    Down,
    Left,
    Right,
    Enter,
    Backspace,
    Escape,
    PageUp,
    PageDown,
    Home,
    End,
    /// Toggles the favourite mark of the server under the cursor.
    ToggleFavourite,
    /// Leaves the menu (Ctrl-D, or `q` with no filter typed).
    Quit,
    Char(char),
}

/// What the caller must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Only the list changed: redraw.
    Redraw,
    /// Open a session to this server.
    Open(String),
    /// The favourite mark of this server changed to the given state: store it, then redraw.
    FavouriteChanged(String, bool),
    Quit,
    /// Nothing changed.
    Nothing,
}

/// How many recently used servers the top of the list shows.
pub const RECENTS_SHOWN: usize = 5;

/// The navigation state of one menu.
#[derive(Debug, Clone)]
pub struct Navigator {
    servers: Vec<NavServer>,
    favourites: BTreeSet<String>,
    /// Most recent first.
    recents: Vec<String>,
    /// Current group path; empty at the top.
    path: String,
    filter: String,
    cursor: usize,
    /// Lines a page holds, for Page Up/Down.
    page: usize,
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn is_within(group_path: &str, path: &str) -> bool {
    path.is_empty()
        || group_path == path
        || (group_path.starts_with(path) && group_path.as_bytes().get(path.len()) == Some(&b'/'))
}

impl Navigator {
    pub fn new(mut servers: Vec<NavServer>, favourites: Vec<String>, recents: Vec<String>) -> Self {
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        let known: BTreeSet<&str> = servers.iter().map(|s| s.name.as_str()).collect();
        // Marks on servers no longer granted are ignored, not shown.
        let favourites = favourites
            .into_iter()
            .filter(|f| known.contains(f.as_str()))
            .collect();
        let recents = recents
            .into_iter()
            .filter(|r| known.contains(r.as_str()))
            .collect();
        Navigator {
            servers,
            favourites,
            recents,
            path: String::new(),
            filter: String::new(),
            cursor: 0,
            page: 10,
        }
    }

    /// The current group path (empty at the top).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn set_page_size(&mut self, lines: usize) {
        self.page = lines.max(1);
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Records that `name` was just opened (the caller stores it too).
    pub fn mark_used(&mut self, name: &str) {
        self.recents.retain(|r| r != name);
        self.recents.insert(0, name.to_string());
    }

    fn server(&self, name: &str) -> Option<&NavServer> {
        self.servers.iter().find(|s| s.name == name)
    }

    fn server_entry(&self, s: &NavServer, recent: bool) -> Entry {
        Entry::Server {
            server: s.clone(),
            favourite: self.favourites.contains(&s.name),
            recent,
        }
    }

    /// The lines to show, top to bottom.
    pub fn entries(&self) -> Vec<Entry> {
        if !self.filter.is_empty() {
            let mut hits: Vec<(i64, &NavServer)> = self
                .servers
                .iter()
                .filter_map(|s| {
                    let target = format!("{}/{}", s.group_path, s.name);
                    let by_name = fuzzy_score(&self.filter, &s.name);
                    // The group path may match too, counting a little less than the name.
                    let by_path = fuzzy_score(&self.filter, &target).map(|v| v - 5);
                    by_name.max(by_path).map(|score| (score, s))
                })
                .collect();
            hits.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
            return hits
                .into_iter()
                .map(|(_, s)| self.server_entry(s, false))
                .collect();
        }

        let mut out = Vec::new();
        if self.path.is_empty() {
            for name in &self.favourites {
                if let Some(s) = self.server(name) {
                    out.push(self.server_entry(s, false));
                }
            }
            for name in self.recents.iter().take(RECENTS_SHOWN) {
                if self.favourites.contains(name) {
                    continue;
                }
                if let Some(s) = self.server(name) {
                    out.push(self.server_entry(s, true));
                }
            }
        } else {
            out.push(Entry::Up);
        }

        // Groups directly below the current path, from the paths of the servers' groups.
        let mut children: BTreeSet<String> = BTreeSet::new();
        for s in &self.servers {
            if !is_within(&s.group_path, &self.path) || s.group_path == self.path {
                continue;
            }
            let rest = if self.path.is_empty() {
                s.group_path.as_str()
            } else {
                &s.group_path[self.path.len() + 1..]
            };
            let first = rest.split('/').next().unwrap_or(rest);
            let child = if self.path.is_empty() {
                first.to_string()
            } else {
                format!("{}/{}", self.path, first)
            };
            children.insert(child);
        }
        for child in children {
            let servers = self
                .servers
                .iter()
                .filter(|s| is_within(&s.group_path, &child))
                .count();
            let name = child.rsplit('/').next().unwrap_or(&child).to_string();
            out.push(Entry::Group {
                path: child,
                name,
                servers,
            });
        }
        for s in self.servers.iter().filter(|s| s.group_path == self.path) {
            out.push(self.server_entry(s, false));
        }
        out
    }

    fn clamp(&mut self, len: usize) {
        if len == 0 {
            self.cursor = 0;
        } else if self.cursor >= len {
            self.cursor = len - 1;
        }
    }

    fn enter_group(&mut self, path: String) {
        self.path = path;
        self.cursor = 0;
    }

    fn go_up(&mut self) -> Outcome {
        if self.path.is_empty() {
            return Outcome::Nothing;
        }
        let left = std::mem::take(&mut self.path);
        self.path = parent_of(&left).to_string();
        // Put the cursor back on the group just left.
        self.cursor = self
            .entries()
            .iter()
            .position(|e| matches!(e, Entry::Group { path, .. } if *path == left))
            .unwrap_or(0);
        Outcome::Redraw
    }

    /// Applies one key press.
    pub fn key(&mut self, key: Key) -> Outcome {
        let entries = self.entries();
        let len = entries.len();
        let current = entries.get(self.cursor).cloned();
        let outcome = match key {
            Key::Up => {
                self.cursor = self.cursor.saturating_sub(1);
                Outcome::Redraw
            }
            Key::Down => {
                self.cursor = (self.cursor + 1).min(len.saturating_sub(1));
                Outcome::Redraw
            }
            Key::PageUp => {
                self.cursor = self.cursor.saturating_sub(self.page);
                Outcome::Redraw
            }
            Key::PageDown => {
                self.cursor = (self.cursor + self.page).min(len.saturating_sub(1));
                Outcome::Redraw
            }
            Key::Home => {
                self.cursor = 0;
                Outcome::Redraw
            }
            Key::End => {
                self.cursor = len.saturating_sub(1);
                Outcome::Redraw
            }
            Key::Enter | Key::Right => match current {
                Some(Entry::Group { path, .. }) => {
                    self.filter.clear();
                    self.enter_group(path);
                    Outcome::Redraw
                }
                Some(Entry::Up) => self.go_up(),
                Some(Entry::Server { server, .. }) if key == Key::Enter => {
                    Outcome::Open(server.name)
                }
                _ => Outcome::Nothing,
            },
            Key::Left => {
                if self.filter.is_empty() {
                    self.go_up()
                } else {
                    Outcome::Nothing
                }
            }
            Key::Backspace => {
                if self.filter.pop().is_some() {
                    self.cursor = 0;
                    Outcome::Redraw
                } else {
                    self.go_up()
                }
            }
            Key::Escape => {
                if self.filter.is_empty() {
                    Outcome::Nothing
                } else {
                    self.filter.clear();
                    self.cursor = 0;
                    Outcome::Redraw
                }
            }
            Key::ToggleFavourite => match current {
                Some(Entry::Server {
                    server, favourite, ..
                }) => {
                    if favourite {
                        self.favourites.remove(&server.name);
                    } else {
                        self.favourites.insert(server.name.clone());
                    }
                    Outcome::FavouriteChanged(server.name, !favourite)
                }
                _ => Outcome::Nothing,
            },
            Key::Quit => Outcome::Quit,
            Key::Char(c) if !c.is_control() => {
                self.filter.push(c);
                self.cursor = 0;
                Outcome::Redraw
            }
            Key::Char(_) => Outcome::Nothing,
        };
        let len = self.entries().len();
        self.clamp(len);
        outcome
    }
}

/// Scores how well `pattern` matches `text` as a subsequence, ignoring case, the way fzf does:
/// every pattern character must appear in order; consecutive runs and matches at the start of
/// a word score higher. `None` when it does not match.
pub fn fuzzy_score(pattern: &str, text: &str) -> Option<i64> {
    let text: Vec<char> = text.chars().collect();
    let mut score = 0i64;
    let mut at = 0usize;
    let mut previous: Option<usize> = None;
    for p in pattern.chars().flat_map(char::to_lowercase) {
        let found = (at..text.len()).find(|&i| text[i].to_lowercase().eq(std::iter::once(p)))?;
        score += 10;
        if previous.is_some_and(|prev| prev + 1 == found) {
            score += 15;
        }
        let word_start = found == 0
            || matches!(text[found - 1], '-' | '_' | '.' | '/' | ' ')
            || (text[found].is_ascii_digit() && !text[found - 1].is_ascii_digit());
        if word_start {
            score += 8;
        }
        // Gaps cost a little, so tighter matches win.
        score -= (found - at) as i64;
        previous = Some(found);
        at = found + 1;
    }
    Some(score)
}

/// Splits terminal input into keys. Returns the keys found and how many bytes were used; an
/// escape sequence cut off at the end of `input` is left for the next read.
pub fn decode_keys(input: &[u8]) -> (Vec<Key>, usize) {
    let mut keys = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == 0x1b {
            let rest = &input[i + 1..];
            if rest.is_empty() {
                // A lone Escape; if more follows in the next read it would be misread, but a
                // terminal sends a whole sequence in one write.
                keys.push(Key::Escape);
                i += 1;
                continue;
            }
            if rest[0] == b'[' || rest[0] == b'O' {
                // CSI or SS3: parameters, then one final byte in 0x40..=0x7e.
                let Some(end) = rest[1..].iter().position(|c| (0x40..=0x7e).contains(c)) else {
                    break;
                };
                let body = &rest[1..1 + end];
                let last = rest[1 + end];
                let key = match (last, body) {
                    (b'A', _) => Some(Key::Up),
                    (b'B', _) => Some(Key::Down),
                    (b'C', _) => Some(Key::Right),
                    (b'D', _) => Some(Key::Left),
                    (b'H', _) => Some(Key::Home),
                    (b'F', _) => Some(Key::End),
                    (b'~', b"1" | b"7") => Some(Key::Home),
                    (b'~', b"4" | b"8") => Some(Key::End),
                    (b'~', b"5") => Some(Key::PageUp),
                    (b'~', b"6") => Some(Key::PageDown),
                    _ => None,
                };
                keys.extend(key);
                i += 2 + end + 1;
                continue;
            }
            keys.push(Key::Escape);
            i += 1;
            continue;
        }
        let key = match b {
            b'\r' | b'\n' => Some(Key::Enter),
            0x7f | 0x08 => Some(Key::Backspace),
            0x04 => Some(Key::Quit),
            // Ctrl-F marks a favourite.
            0x06 => Some(Key::ToggleFavourite),
            _ => None,
        };
        if let Some(k) = key {
            keys.push(k);
            i += 1;
            continue;
        }
        if b < 0x20 {
            i += 1;
            continue;
        }
        // A UTF-8 character; wait for the rest of it if it is cut off.
        let width = match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        if i + width > input.len() {
            break;
        }
        if let Ok(text) = std::str::from_utf8(&input[i..i + width]) {
            keys.extend(text.chars().map(Key::Char));
        }
        i += width;
    }
    (keys, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, group: &str) -> NavServer {
        NavServer {
            name: name.into(),
            group_path: group.into(),
            description: None,
        }
    }

    fn names(nav: &Navigator) -> Vec<String> {
        nav.entries()
            .iter()
            .map(|e| match e {
                Entry::Up => "..".to_string(),
                Entry::Group { path, servers, .. } => format!("{path}/ ({servers})"),
                Entry::Server { server, .. } => server.name.clone(),
            })
            .collect()
    }

    fn sample() -> Navigator {
        Navigator::new(
            vec![
                s("web01", "prod/web"),
                s("web02", "prod/web"),
                s("db01", "prod/db"),
                s("gw", "prod"),
                s("stage01", "stage"),
            ],
            vec![],
            vec![],
        )
    }

    #[test]
    fn the_tree_opens_and_closes_with_the_arrow_keys() {
        let mut nav = sample();
        assert_eq!(names(&nav), ["prod/ (4)", "stage/ (1)"]);
        assert_eq!(nav.key(Key::Enter), Outcome::Redraw);
        assert_eq!(nav.path(), "prod");
        assert_eq!(names(&nav), ["..", "prod/db/ (1)", "prod/web/ (2)", "gw"]);
        nav.key(Key::Down);
        nav.key(Key::Down);
        nav.key(Key::Right);
        assert_eq!(names(&nav), ["..", "web01", "web02"]);
        nav.key(Key::Down);
        nav.key(Key::Down);
        assert_eq!(nav.key(Key::Enter), Outcome::Open("web02".into()));
        // Left goes back and puts the cursor on the group just left.
        nav.key(Key::Left);
        assert_eq!(nav.path(), "prod");
        assert_eq!(nav.cursor(), 2);
        nav.key(Key::Backspace);
        assert_eq!(nav.path(), "");
        assert_eq!(nav.key(Key::Left), Outcome::Nothing);
        // The cursor stays inside the list.
        for _ in 0..10 {
            nav.key(Key::Down);
        }
        assert_eq!(nav.cursor(), 1);
    }

    #[test]
    fn typing_filters_across_all_groups_fuzzily() {
        let mut nav = sample();
        for c in "wb1".chars() {
            nav.key(Key::Char(c));
        }
        assert_eq!(names(&nav), ["web01"]);
        nav.key(Key::Backspace);
        assert_eq!(names(&nav)[..2], ["web01", "web02"]);
        nav.key(Key::Escape);
        assert_eq!(nav.filter(), "");
        for c in "stg".chars() {
            nav.key(Key::Char(c));
        }
        assert_eq!(names(&nav), ["stage01"]);
        assert_eq!(nav.key(Key::Enter), Outcome::Open("stage01".into()));
        for c in "zzz".chars() {
            nav.key(Key::Char(c));
        }
        assert!(nav.entries().is_empty());
        assert_eq!(nav.key(Key::Enter), Outcome::Nothing);
    }

    #[test]
    fn fuzzy_scores_prefer_tight_and_word_start_matches() {
        assert!(fuzzy_score("wb1", "web01").is_some());
        assert!(fuzzy_score("wb1", "db01").is_none());
        assert!(fuzzy_score("WEB", "web01").is_some());
        let tight = fuzzy_score("web", "web01").unwrap_or_default();
        let loose = fuzzy_score("web", "w-e-b").unwrap_or_default();
        assert!(tight > loose);
    }

    #[test]
    fn favourites_and_recents_sit_at_the_top() {
        let mut nav = Navigator::new(
            sample().servers.clone(),
            vec!["db01".into(), "gone".into()],
            vec!["stage01".into(), "db01".into()],
        );
        assert_eq!(names(&nav), ["db01", "stage01", "prod/ (4)", "stage/ (1)"]);
        nav.key(Key::Down);
        assert_eq!(
            nav.key(Key::ToggleFavourite),
            Outcome::FavouriteChanged("stage01".into(), true)
        );
        nav.mark_used("web01");
        assert_eq!(
            names(&nav),
            ["db01", "stage01", "web01", "prod/ (4)", "stage/ (1)"]
        );
    }

    #[test]
    fn terminal_bytes_become_keys() {
        let (keys, used) = decode_keys(b"\x1b[A\x1b[B\x1bOC\x1b[Dx\r\x7f\x1b[5~\x06\x04");
        assert_eq!(
            keys,
            [
                Key::Up,
                Key::Down,
                Key::Right,
                Key::Left,
                Key::Char('x'),
                Key::Enter,
                Key::Backspace,
                Key::PageUp,
                Key::ToggleFavourite,
                Key::Quit
            ]
        );
        assert_eq!(used, 21);
        // A sequence cut off at the end waits for the next read.
        let (keys, used) = decode_keys(b"a\x1b[1");
        assert_eq!((keys, used), (vec![Key::Char('a')], 1));
        let (keys, _) = decode_keys("é".as_bytes());
        assert_eq!(keys, [Key::Char('é')]);
    }
}
