//! The server menu on the person's terminal: drawn with plain ANSI sequences (no colours; the
//! cursor is marked with `>` as well as reverse video, so it reads on any terminal and in
//! logs), driven by the shared [`Navigator`], and opening targets through the relay.

use std::collections::HashMap;
use std::sync::Arc;

use app::nav::{Entry, NavServer, Navigator, Outcome, RECENTS_SHOWN, decode_keys};
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tracing::{Instrument, info, warn};

use super::channel::SessionCtx;
use super::relay;
use crate::access;
use crate::onward::{Pty, Request, WindowSize};

/// Switches to the terminal's alternate screen, so the menu leaves the scrollback alone.
const ENTER_SCREEN: &str = "\x1b[?1049h";
/// Back to the normal screen, with the cursor shown again.
const LEAVE_SCREEN: &str = "\x1b[?25h\x1b[?1049l";

/// Lines the menu uses above and below the list.
const HEADER_LINES: usize = 4;
const FOOTER_LINES: usize = 2;

/// Cuts `text` to at most `width` characters.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('~');
    out
}

/// The mark column (`*` favourite, `~` recently used) and the text of one list line.
fn line(entry: &Entry) -> (char, String) {
    match entry {
        Entry::Up => (' ', "..  (back)".to_string()),
        Entry::Group { name, servers, .. } => (' ', format!("[{name}/]  {servers} server(s)")),
        Entry::Server {
            server,
            favourite,
            recent,
        } => {
            let mark = if *favourite {
                '*'
            } else if *recent {
                '~'
            } else {
                ' '
            };
            let mut text = server.name.clone();
            if !server.group_path.is_empty() {
                text.push_str(&format!("  ({})", server.group_path));
            }
            if let Some(d) = &server.description {
                text.push_str(&format!("  {d}"));
            }
            (mark, text)
        }
    }
}

/// The first list line to show so that the cursor stays visible.
fn scroll_top(cursor: usize, len: usize, rows: usize) -> usize {
    if rows == 0 || len <= rows {
        return 0;
    }
    // Keep the cursor near the middle of the page once the list has to scroll.
    cursor.saturating_sub(rows / 2).min(len - rows)
}

/// The whole screen for `nav`, sized `width` x `height`, with an optional status message.
pub fn render(nav: &Navigator, user: &str, width: u32, height: u32, message: &str) -> String {
    let width = (width as usize).clamp(20, 500);
    let height = (height as usize).clamp(HEADER_LINES + FOOTER_LINES + 1, 300);
    let rows = height - HEADER_LINES - FOOTER_LINES;
    let entries = nav.entries();
    let cursor = nav.cursor().min(entries.len().saturating_sub(1));

    let mut out = String::from("\x1b[?25l\x1b[H\x1b[2J");
    let mut put = |text: &str, reverse: bool| {
        if reverse {
            out.push_str("\x1b[7m");
        }
        // Names and descriptions come from the inventory: no escape sequence of theirs may
        // reach the terminal.
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        out.push_str(&fit(&clean, width));
        if reverse {
            out.push_str("\x1b[0m");
        }
        out.push_str("\r\n");
    };
    put(&format!("Jumpgate  -  signed in as {user}"), false);
    let place = if nav.path().is_empty() {
        "/".to_string()
    } else {
        format!("/{}", nav.path())
    };
    put(&format!("Group: {place}"), false);
    put(&format!("Filter: {}", nav.filter()), false);
    put(&"-".repeat(width.min(80)), false);

    if entries.is_empty() {
        let text = if nav.is_empty() {
            "  No servers are granted to you. Ask an administrator for access."
        } else {
            "  Nothing matches the filter. Backspace to edit it, Esc to clear it."
        };
        put(text, false);
        for _ in 1..rows {
            put("", false);
        }
    } else {
        let top = scroll_top(cursor, entries.len(), rows);
        for i in top..top + rows {
            match entries.get(i) {
                Some(e) => {
                    let (mark, text) = line(e);
                    let here = i == cursor;
                    let pointer = if here { '>' } else { ' ' };
                    put(&format!("{pointer}{mark} {text}"), here)
                }
                None => put("", false),
            }
        }
    }
    put(message, false);
    // The last line without a line break, so the screen does not scroll.
    out.push_str(&fit(
        "Up/Down move  Enter/Right open  Left/Bksp back  type to filter  Ctrl-F favourite  Ctrl-D quit",
        width,
    ));
    out
}

/// The servers `ctx`'s user may reach now, as the navigator lists them, with their ids.
async fn load(ctx: &SessionCtx) -> Result<(Navigator, HashMap<String, i64>), String> {
    let storage = ctx.shared.storage();
    let failed = |_| "The gateway could not read your servers. Try again later.".to_string();
    let user = storage
        .user_by_id(ctx.user.id)
        .await
        .map_err(failed)?
        .filter(|u| u.is_active())
        .ok_or_else(|| "Your account is disabled.".to_string())?;
    let servers = access::reachable_with_paths(storage, &user)
        .await
        .map_err(failed)?;
    let favourites = storage.favourites(user.id).await.map_err(failed)?;
    let recents = storage
        .recents(user.id, RECENTS_SHOWN as i64)
        .await
        .map_err(failed)?;
    let ids = servers
        .iter()
        .map(|(s, _)| (s.name.clone(), s.id))
        .collect();
    let list = servers
        .into_iter()
        .map(|(s, group_path)| NavServer {
            group_path,
            name: s.name,
            description: s.description,
        })
        .collect();
    Ok((Navigator::new(list, favourites, recents), ids))
}

async fn write(tx: &ChannelWriteHalf<Msg>, text: &str) -> bool {
    tx.data_bytes(text.as_bytes().to_vec()).await.is_ok()
}

/// Lines of the list on a terminal `rows` high.
fn list_rows(rows: u32) -> usize {
    (rows as usize)
        .saturating_sub(HEADER_LINES + FOOTER_LINES)
        .max(1)
}

/// Runs the menu until the person quits or leaves; returns the exit status for the channel.
pub async fn run(
    ctx: &SessionCtx,
    pty: &mut Pty,
    rx: &mut ChannelReadHalf,
    tx: &Arc<ChannelWriteHalf<Msg>>,
) -> u32 {
    let who = ctx.user.username.clone();
    let (mut nav, mut ids) = match load(ctx).await {
        Ok(loaded) => loaded,
        Err(message) => {
            let _ = write(tx, &format!("jumpgate: {message}\r\n")).await;
            return super::channel::EXIT_GATEWAY_ERROR;
        }
    };
    nav.set_page_size(list_rows(pty.rows));
    let mut message = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let draw =
        |nav: &Navigator, pty: &Pty, message: &str| render(nav, &who, pty.cols, pty.rows, message);
    if !write(tx, &format!("{ENTER_SCREEN}{}", draw(&nav, pty, &message))).await {
        return 0;
    }

    loop {
        let msg = rx.wait().await;
        if let Some(size) = msg.as_ref().and_then(WindowSize::of) {
            pty.resize(size);
            nav.set_page_size(list_rows(pty.rows));
            if !write(tx, &draw(&nav, pty, &message)).await {
                return 0;
            }
            continue;
        }
        let keys = match msg {
            Some(ChannelMsg::Data { data }) => {
                pending.extend_from_slice(&data);
                // A person types a few bytes at a time; anything longer is a paste or noise.
                if pending.len() > 4096 {
                    pending.clear();
                    continue;
                }
                let (keys, used) = decode_keys(&pending);
                pending.drain(..used);
                keys
            }
            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => return 0,
            Some(_) => continue,
        };

        let mut redraw = false;
        for key in keys {
            match nav.key(key) {
                Outcome::Nothing => {}
                Outcome::Redraw => redraw = true,
                Outcome::Quit => {
                    let _ = write(tx, &format!("{LEAVE_SCREEN}Signed out of Jumpgate.\r\n")).await;
                    return 0;
                }
                Outcome::FavouriteChanged(name, on) => {
                    if let Some(id) = ids.get(&name)
                        && let Err(e) = ctx
                            .shared
                            .storage()
                            .set_favourite(ctx.user.id, *id, on)
                            .await
                    {
                        warn!(error = %e, "could not store a favourite");
                        message = "The favourite could not be saved.".into();
                    }
                    redraw = true;
                }
                Outcome::Open(name) => {
                    if !write(tx, &format!("{LEAVE_SCREEN}Connecting to {name} ...\r\n")).await {
                        return 0;
                    }
                    let span = tracing::info_span!("target", target = %name, request = "shell");
                    let mut terminal = Some(pty.clone());
                    let result =
                        relay::run(ctx, &name, Request::Shell, &mut terminal, rx, tx, false)
                            .instrument(span.clone())
                            .await;
                    if let Some(t) = terminal {
                        *pty = t;
                    }
                    message = match result {
                        Ok(ended) if ended.client_gone => return 0,
                        Ok(ended) if ended.revoked => {
                            format!("Your access to {name} was revoked; the session was closed.")
                        }
                        Ok(ended) => {
                            span.in_scope(|| info!(status = ?ended.status, "target session ended"));
                            match ended.status {
                                Some(status) => {
                                    format!("The session on {name} ended (exit status {status}).")
                                }
                                None => format!("The session on {name} ended."),
                            }
                        }
                        Err(e) => {
                            span.in_scope(|| info!(error = %e, "target session refused"));
                            format!("{name}: {e}")
                        }
                    };
                    // Grants may have changed while the session ran.
                    match load(ctx).await {
                        Ok((fresh, fresh_ids)) => {
                            nav = fresh;
                            ids = fresh_ids;
                            nav.set_page_size(list_rows(pty.rows));
                        }
                        Err(m) => {
                            let _ = write(tx, &format!("jumpgate: {m}\r\n")).await;
                            return super::channel::EXIT_GATEWAY_ERROR;
                        }
                    }
                    pending.clear();
                    if !write(tx, ENTER_SCREEN).await {
                        return 0;
                    }
                    redraw = true;
                    // Keys typed after Enter belonged to the session that just ended.
                    break;
                }
            }
        }
        if redraw && !write(tx, &draw(&nav, pty, &message)).await {
            return 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::nav::Key;

    fn nav(n: usize) -> Navigator {
        let servers = (0..n)
            .map(|i| NavServer {
                name: format!("web{i:02}"),
                group_path: String::new(),
                description: None,
            })
            .collect();
        Navigator::new(servers, vec![], vec![])
    }

    #[test]
    fn a_long_list_scrolls_with_the_cursor_at_80x24() {
        let mut n = nav(100);
        for _ in 0..50 {
            n.key(Key::Down);
        }
        let screen = render(&n, "alice", 80, 24, "");
        assert!(screen.contains(">  web50"), "{screen}");
        assert!(!screen.contains("web00"));
        assert!(screen.contains("signed in as alice"));
        // Never more lines than the terminal has.
        assert!(screen.matches("\r\n").count() < 24);
        for l in screen.split("\r\n") {
            let visible = l.replace("\x1b[7m", "").replace("\x1b[0m", "");
            let visible = visible.trim_start_matches("\x1b[?25l\x1b[H\x1b[2J");
            assert!(visible.chars().count() <= 80, "{visible}");
        }
    }

    #[test]
    fn scrolling_keeps_the_cursor_on_screen() {
        for len in [1usize, 5, 18, 19, 100] {
            for cursor in 0..len {
                let top = scroll_top(cursor, len, 18);
                assert!(
                    top <= cursor && cursor < top + 18,
                    "len {len} cursor {cursor}"
                );
                assert!(top + 18.min(len) <= len);
            }
        }
    }

    #[test]
    fn empty_menus_say_why() {
        let screen = render(&nav(0), "bob", 80, 24, "");
        assert!(screen.contains("No servers are granted to you"));
    }
}
