//! The Web SSH console: the server navigator (the same [`Navigator`] as the SSH menu) beside
//! terminal tabs. Focus starts in the navigator; F6 moves it between navigator and terminal.

use leptos::html;
use leptos::prelude::*;

use crate::SessionResource;
use crate::api::ApiError;
use crate::inventory::{NavData, SetFavourite, console_nav};
use crate::nav::{Entry, Key, Navigator, Outcome};

/// One terminal tab.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tab {
    id: u32,
    server: String,
}

/// What a tab's header says. Only the browser build changes it (the server renders no tabs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum TabState {
    Connecting,
    Connected,
    Closed(String),
}

impl TabState {
    fn label(&self) -> &'static str {
        match self {
            TabState::Connecting => "connecting",
            TabState::Connected => "connected",
            TabState::Closed(_) => "closed",
        }
    }
}

/// The key a browser event means to the navigator, if any.
fn nav_key(key: &str, ctrl: bool, alt: bool, meta: bool) -> Option<Key> {
    if alt || meta {
        return None;
    }
    if ctrl {
        return match key {
            "f" | "F" => Some(Key::ToggleFavourite),
            _ => None,
        };
    }
    Some(match key {
        "ArrowUp" => Key::Up,
        "ArrowDown" => Key::Down,
        "ArrowLeft" => Key::Left,
        "ArrowRight" => Key::Right,
        "Enter" => Key::Enter,
        "Backspace" => Key::Backspace,
        "Escape" => Key::Escape,
        "PageUp" => Key::PageUp,
        "PageDown" => Key::PageDown,
        "Home" => Key::Home,
        "End" => Key::End,
        other => {
            let mut chars = other.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_control() => Key::Char(c),
                _ => return None,
            }
        }
    })
}

#[component]
pub fn Console() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    let data = Resource::new(|| (), |_| console_nav());
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let info = match session.await {
                    Ok(info) => info,
                    Err(e) => return view! { <p class="error">{e.to_string()}</p> }.into_any(),
                };
                if info.user.is_none() {
                    return view! { <p>"Sign in to use the console."</p> }.into_any();
                }
                match data.await {
                    Ok(data) => view! { <ConsoleBody data csrf=info.csrf_token /> }.into_any(),
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ConsoleBody(data: NavData, csrf: String) -> impl IntoView {
    let csrf = StoredValue::new(csrf);
    let nav = RwSignal::new(Navigator::new(data.servers, data.favourites, data.recents));
    let tabs = RwSignal::new(Vec::<Tab>::new());
    // Each tab's state, shared by its button and its panel (see `tab_state`).
    provide_context(RwSignal::new(Vec::<(u32, RwSignal<TabState>)>::new()));
    let active = RwSignal::new(None::<u32>);
    let next_id = StoredValue::new(1u32);
    let favourite = ServerAction::<SetFavourite>::new();
    let favourite_error = Signal::derive(move || {
        favourite
            .value()
            .get()
            .and_then(|r: Result<(), ApiError>| r.err())
    });
    let tree = NodeRef::<html::Ul>::new();
    // Asks the active tab's terminal to take focus (a counter: each change is one request).
    let focus_terminal = RwSignal::new(0u32);

    let open = move |server: String| {
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        tabs.update(|t| t.push(Tab { id, server }));
        active.set(Some(id));
        focus_terminal.update(|n| *n += 1);
    };
    let apply = move |key: Key| {
        let outcome = nav.try_update(|n| n.key(key)).unwrap_or(Outcome::Nothing);
        match outcome {
            Outcome::Open(server) => open(server),
            Outcome::FavouriteChanged(server, on) => {
                favourite.dispatch(SetFavourite {
                    csrf_token: csrf.get_value(),
                    server,
                    on,
                });
            }
            Outcome::Redraw | Outcome::Quit | Outcome::Nothing => {}
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "F6" {
            ev.prevent_default();
            focus_terminal.update(|n| *n += 1);
            return;
        }
        if let Some(key) = nav_key(&ev.key(), ev.ctrl_key(), ev.alt_key(), ev.meta_key()) {
            ev.prevent_default();
            apply(key);
        }
    };
    let focus_tree = move || {
        if let Some(el) = tree.get_untracked() {
            let _ = el.focus();
        }
    };
    // Focus starts in the navigator: once the list is in the document (a node reference is
    // set before its element is attached, and a detached element cannot take focus).
    Effect::new(move |_| {
        if tree.get().is_some() {
            request_animation_frame(focus_tree);
        }
    });

    let close_tab = move |id: u32| {
        tabs.update(|t| t.retain(|tab| tab.id != id));
        if active.get_untracked() == Some(id) {
            active.set(tabs.with_untracked(|t| t.last().map(|tab| tab.id)));
        }
    };

    view! {
        <h1>"Web SSH console"</h1>
        <p class="hint">
            "Up/Down move, Enter or Right opens, Left goes back, type to filter, Ctrl-F marks a favourite. "
            "F6 moves between the server list and the terminal."
        </p>
        <div class="console">
            {view! {
            <section class="navigator" aria-label="Servers">
                <p class="nav-path" data-testid="nav-path">
                    {move || {
                        let n = nav.get();
                        if n.filter().is_empty() {
                            format!("/{}", n.path())
                        } else {
                            format!("Filter: {}", n.filter())
                        }
                    }}
                </p>
                <ul
                    role="tree"
                    tabindex="0"
                    autofocus=true
                    class="nav-tree"
                    aria-label="Server groups and servers"
                    node_ref=tree
                    on:keydown=on_keydown
                >
                    {move || {
                        let n = nav.get();
                        let cursor = n.cursor();
                        let entries = n.entries();
                        if entries.is_empty() {
                            let text = if n.is_empty() {
                                "No servers are granted to you."
                            } else {
                                "Nothing matches the filter."
                            };
                            return view! { <li class="muted">{text}</li> }.into_any();
                        }
                        entries
                            .into_iter()
                            .enumerate()
                            .map(|(i, entry)| {
                                let selected = i == cursor;
                                let (label, kind, mark) = match &entry {
                                    Entry::Up => ("..".to_string(), "up", ""),
                                    Entry::Group { name, servers, .. } => {
                                        (format!("{name}/ ({servers})"), "group", "")
                                    }
                                    Entry::Server { server, favourite, recent } => {
                                        let mut text = server.name.clone();
                                        if !server.group_path.is_empty() && !n.filter().is_empty() {
                                            text.push_str(&format!("  ({})", server.group_path));
                                        }
                                        let mark = if *favourite {
                                            "★ "
                                        } else if *recent {
                                            "↺ "
                                        } else {
                                            ""
                                        };
                                        (text, "server", mark)
                                    }
                                };
                                let name = match &entry {
                                    Entry::Server { server, .. } => server.name.clone(),
                                    Entry::Group { path, .. } => path.clone(),
                                    Entry::Up => String::new(),
                                };
                                view! {
                                    <li
                                        role="treeitem"
                                        aria-selected=if selected { "true" } else { "false" }
                                        class=if selected { "selected" } else { "" }
                                        data-kind=kind
                                        data-name=name
                                        on:click=move |_| {
                                            nav.update(|n| {
                                                for _ in 0..n.cursor() {
                                                    n.key(Key::Up);
                                                }
                                                for _ in 0..i {
                                                    n.key(Key::Down);
                                                }
                                            });
                                            apply(Key::Enter);
                                        }
                                    >
                                        {mark}
                                        {label}
                                    </li>
                                }
                                    .into_any()
                            })
                            .collect_view()
                            .into_any()
                    }}
                </ul>
                {move || favourite_error.get().map(|e| view! { <p class="error">{e.to_string()}</p> })}
            </section>
            }
                .into_any()}
            {view! {
            <section class="terminals" aria-label="Terminals">
                <div role="tablist" class="tabbar">
                    <For each=move || tabs.get() key=|t| t.id let:tab>
                        <TabButton tab=tab.clone() active close=close_tab focus_terminal />
                    </For>
                </div>
                <Show when=move || tabs.with(|t| t.is_empty())>
                    <p class="muted" data-testid="no-tabs">
                        "Choose a server on the left and press Enter to open a terminal."
                    </p>
                </Show>
                <For each=move || tabs.get() key=|t| t.id let:tab>
                    <TerminalPanel tab active focus_terminal focus_tree />
                </For>
            </section>
            }
                .into_any()}
        </div>
    }
}

/// The state of each tab, shared by its button and its panel.
fn tab_state(id: u32) -> RwSignal<TabState> {
    let states = use_context::<RwSignal<Vec<(u32, RwSignal<TabState>)>>>();
    match states {
        Some(all) => {
            if let Some(found) =
                all.with_untracked(|v| v.iter().find(|(i, _)| *i == id).map(|(_, s)| *s))
            {
                return found;
            }
            let state = RwSignal::new(TabState::Connecting);
            all.update(|v| v.push((id, state)));
            state
        }
        None => RwSignal::new(TabState::Connecting),
    }
}

#[component]
fn TabButton(
    tab: Tab,
    active: RwSignal<Option<u32>>,
    close: impl Fn(u32) + Copy + 'static,
    focus_terminal: RwSignal<u32>,
) -> impl IntoView {
    let id = tab.id;
    let state = tab_state(id);
    view! {
        <span class="tab" class:active=move || active.get() == Some(id)>
            <button
                role="tab"
                aria-selected=move || if active.get() == Some(id) { "true" } else { "false" }
                data-tab=tab.server.clone()
                on:click=move |_| {
                    active.set(Some(id));
                    focus_terminal.update(|n| *n += 1);
                }
            >
                {tab.server.clone()}
                <span class="tab-state" data-state=move || state.get().label()>
                    {move || format!(" · {}", state.get().label())}
                </span>
            </button>
            <button class="tab-close secondary" aria-label=format!("Close {}", tab.server) on:click=move |_| close(id)>
                "×"
            </button>
        </span>
    }
}

#[component]
fn TerminalPanel(
    tab: Tab,
    active: RwSignal<Option<u32>>,
    focus_terminal: RwSignal<u32>,
    focus_tree: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let id = tab.id;
    let state = tab_state(id);
    let host = NodeRef::<html::Div>::new();
    let server = tab.server.clone();
    // Bumped by Reconnect: each value is one connection attempt.
    let attempt = RwSignal::new(0u32);
    let visible = move || active.get() == Some(id);

    #[cfg(feature = "hydrate")]
    {
        use std::rc::Rc;

        use crate::terminal::{Live, Status};

        let live = StoredValue::new_local(None::<Live>);
        Effect::new(move |_| {
            let _ = attempt.get();
            let Some(el) = host.get() else {
                return;
            };
            live.set_value(None);
            el.set_inner_html("");
            let on_status: Rc<dyn Fn(Status)> = Rc::new(move |s| {
                state.set(match s {
                    Status::Connecting => TabState::Connecting,
                    Status::Connected => TabState::Connected,
                    Status::Closed(reason) => TabState::Closed(reason),
                })
            });
            let element: &web_sys::HtmlElement = &el;
            match Live::start(element.clone(), &server, on_status) {
                Ok(t) => {
                    t.focus();
                    live.set_value(Some(t));
                }
                Err(_) => state.set(TabState::Closed(
                    "The terminal could not start in this browser.".into(),
                )),
            }
        });
        // F6 and new tabs ask for the terminal; switching tabs refits the one shown.
        Effect::new(move |_| {
            let _ = focus_terminal.get();
            if active.get() == Some(id) {
                live.with_value(|l| {
                    if let Some(l) = l {
                        l.refit();
                        l.focus();
                    }
                });
            }
        });
        // F6 inside the terminal goes back to the navigator; the listener sits on the panel
        // in the capture phase, before xterm.js sees the key.
        Effect::new(move |_| {
            use wasm_bindgen::JsCast;
            use wasm_bindgen::prelude::Closure;
            let Some(el) = host.get() else {
                return;
            };
            let handler = Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(
                move |ev: web_sys::KeyboardEvent| {
                    if ev.key() == "F6" {
                        ev.prevent_default();
                        ev.stop_propagation();
                        focus_tree();
                    }
                },
            );
            let _ = el.add_event_listener_with_callback_and_bool(
                "keydown",
                handler.as_ref().unchecked_ref(),
                true,
            );
            handler.forget();
        });
        on_cleanup(move || live.set_value(None));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (focus_terminal, focus_tree, server, attempt);

    view! {
        <div role="tabpanel" class="tabpanel" data-panel=tab.server.clone() hidden=move || !visible()>
            <div class="term-host" node_ref=host></div>
            {move || match state.get() {
                TabState::Closed(reason) => {
                    view! {
                        <p class="term-closed" role="status">
                            <span data-testid="closed-reason">{reason}</span>
                            " "
                            <button on:click=move |_| {
                                state.set(TabState::Connecting);
                                attempt.update(|n| *n += 1);
                            }>"Reconnect"</button>
                        </p>
                    }
                        .into_any()
                }
                _ => ().into_any(),
            }}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_keys_map_to_navigator_keys() {
        assert_eq!(nav_key("ArrowDown", false, false, false), Some(Key::Down));
        assert_eq!(nav_key("w", false, false, false), Some(Key::Char('w')));
        assert_eq!(nav_key("f", true, false, false), Some(Key::ToggleFavourite));
        assert_eq!(nav_key("Tab", false, false, false), None);
        assert_eq!(nav_key("x", false, true, false), None);
    }
}
