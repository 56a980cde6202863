//! The Servers page: the server-group tree, servers with their credentials (write-only), host-key
//! scans, and the gateway key's public half.

use leptos::prelude::*;

use super::{admin_csrf, last_error, report};
use crate::SessionResource;
use crate::api::ApiError;
use crate::components::{CsrfField, ErrorLine};
use crate::inventory::{
    AdminAddGroup, AdminDeleteGroup, AdminDeleteServer, AdminSaveServer, AdminScanHostKey,
    GroupInfo, Inventory, ServerInfo, admin_inventory,
};

#[derive(Clone, Copy)]
struct Actions {
    add_group: ServerAction<AdminAddGroup>,
    delete_group: ServerAction<AdminDeleteGroup>,
    save: ServerAction<AdminSaveServer>,
    delete_server: ServerAction<AdminDeleteServer>,
    scan: ServerAction<AdminScanHostKey>,
}

#[component]
pub fn AdminServers() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    let actions = Actions {
        add_group: ServerAction::new(),
        delete_group: ServerAction::new(),
        save: ServerAction::new(),
        delete_server: ServerAction::new(),
        scan: ServerAction::new(),
    };
    let inventory = Resource::new(
        move || {
            (
                actions.add_group.version().get(),
                actions.delete_group.version().get(),
                actions.save.version().get(),
                actions.delete_server.version().get(),
                actions.scan.version().get(),
            )
        },
        |_| admin_inventory(),
    );
    let group_error = last_error(actions.add_group.value());
    let status = RwSignal::new(None);
    report(actions.delete_group.value(), status);
    report(actions.save.value(), status);
    report(actions.delete_server.value(), status);
    report(actions.scan.value(), status);

    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let csrf = match admin_csrf(session.await, "Servers") {
                    Ok(csrf) => csrf,
                    Err(page) => return page,
                };
                let inv = match inventory.await {
                    Ok(inv) => inv,
                    Err(e) => return view! { <p class="error">{e.to_string()}</p> }.into_any(),
                };
                view! {
                    <h1>"Servers"</h1>
                    <section class="card">
                        <h2>"All servers"</h2>
                        <ErrorLine error=Signal::from(status) />
                        {move || {
                            actions
                                .scan
                                .value()
                                .get()
                                .and_then(|r| r.ok())
                                .map(|msg| {
                                    view! {
                                        <p class="success" role="status" data-testid="scan-result">
                                            {msg}
                                        </p>
                                    }
                                })
                        }}
                        <ServerTable inv=inv.clone() csrf=csrf.clone() actions />
                    </section>
                    <section class="card">
                        <h2>"Add a server"</h2>
                        <ServerFormFields
                            action=actions.save
                            csrf=csrf.clone()
                            groups=inv.groups.clone()
                            server=None
                        />
                    </section>
                    <section class="card">
                        <h2>"Server groups"</h2>
                        <GroupTree groups=inv.groups.clone() csrf=csrf.clone() actions />
                        <ActionForm action=actions.add_group attr:id="add-group-form">
                            <CsrfField token=csrf.clone() />
                            <label>
                                "New group path (nest with '/', e.g. prod/web)"
                                <input name="path" type="text" required autocomplete="off" />
                            </label>
                            <ErrorLine error=group_error />
                            <button type="submit">"Add group"</button>
                        </ActionForm>
                    </section>
                    <section class="card">
                        <h2>"Gateway key"</h2>
                        <p>
                            "Servers set to use the gateway key accept this public key. Add it to "
                            <code>"~/.ssh/authorized_keys"</code>
                            " of the login user on the target:"
                        </p>
                        <pre class="key" data-testid="gateway-key">
                            {inv.gateway_public_key.clone()}
                        </pre>
                    </section>
                }
                    .into_any()
            })}
        </Suspense>
    }
}

#[component]
fn GroupTree(groups: Vec<GroupInfo>, csrf: String, actions: Actions) -> impl IntoView {
    if groups.is_empty() {
        return view! { <p class="muted">"No server groups yet. Add one below."</p> }.into_any();
    }
    let rows = groups
        .into_iter()
        .map(|g| {
            let indent = format!("padding-left: {}rem", g.depth * 2);
            let csrf = csrf.clone();
            let path = g.path.clone();
            view! {
                <li data-group=g.path.clone() style=indent>
                    <strong>{g.name.clone()}</strong>
                    <span class="muted">
                        {format!(" {} · {} server(s) ", g.path, g.servers)}
                    </span>
                    <ActionForm action=actions.delete_group attr:class="inline">
                        <CsrfField token=csrf.clone() />
                        <input type="hidden" name="path" value=path />
                        <button type="submit" class="small danger">"Delete"</button>
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="tree">{rows}</ul> }.into_any()
}

#[component]
fn ServerTable(inv: Inventory, csrf: String, actions: Actions) -> impl IntoView {
    if inv.servers.is_empty() {
        return view! { <p class="muted">"No servers yet."</p> }.into_any();
    }
    let groups = inv.groups.clone();
    let rows = inv
        .servers
        .into_iter()
        .map(|s| {
            let pin = s
                .host_key_fingerprint
                .clone()
                .unwrap_or_else(|| "not pinned yet".into());
            let auth = match s.auth_kind.as_str() {
                "password" => "password",
                "private_key" => "private key",
                "gateway_key" => "gateway key",
                _ => "?",
            };
            let csrf_delete = csrf.clone();
            let name_delete = s.name.clone();
            view! {
                <tr data-server=s.name.clone()>
                    <td>
                        <strong>{s.name.clone()}</strong>
                        <div class="muted">{s.description.clone().unwrap_or_default()}</div>
                    </td>
                    <td>{s.group_path.clone()}</td>
                    <td>
                        <code>{format!("{}@{}:{}", s.login, s.host, s.port)}</code>
                    </td>
                    <td data-testid="auth">{auth}</td>
                    <td>
                        <code class="wrap" data-testid="host-key">{pin}</code>
                    </td>
                    <td class="actions">
                        <ScanButton
                            action=actions.scan
                            csrf=csrf.clone()
                            name=s.name.clone()
                            accept=false
                        />
                        <details class="more">
                            <summary>"More"</summary>
                            <ServerFormFields
                                action=actions.save
                                csrf=csrf.clone()
                                groups=groups.clone()
                                server=Some(s.clone())
                            />
                            <div class="row-buttons">
                                <ScanButton
                                    action=actions.scan
                                    csrf=csrf.clone()
                                    name=s.name.clone()
                                    accept=true
                                />
                                <ActionForm action=actions.delete_server attr:class="inline">
                                    <CsrfField token=csrf_delete />
                                    <input type="hidden" name="name" value=name_delete />
                                    <button type="submit" class="small danger">
                                        "Delete server"
                                    </button>
                                </ActionForm>
                            </div>
                        </details>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list">
            <thead>
                <tr>
                    <th>"Server"</th>
                    <th>"Group"</th>
                    <th>"Login"</th>
                    <th>"Credential"</th>
                    <th>"Pinned host key"</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn ScanButton(
    action: ServerAction<AdminScanHostKey>,
    csrf: String,
    name: String,
    accept: bool,
) -> impl IntoView {
    let (label, class) = if accept {
        ("Accept changed host key", "small danger")
    } else {
        ("Scan host key", "small")
    };
    view! {
        <ActionForm action attr:class="inline">
            <CsrfField token=csrf />
            <input type="hidden" name="name" value=name />
            {accept.then(|| view! { <input type="hidden" name="accept_change" value="yes" /> })}
            <button type="submit" class=class>{label}</button>
        </ActionForm>
    }
}

/// The add form (`server` is `None`) or the edit form of one server. Secret fields start empty:
/// stored secrets are never sent to the browser.
#[component]
fn ServerFormFields(
    action: ServerAction<AdminSaveServer>,
    csrf: String,
    groups: Vec<GroupInfo>,
    server: Option<ServerInfo>,
) -> impl IntoView {
    let editing = server.is_some();
    let s = server.unwrap_or(ServerInfo {
        name: String::new(),
        group_path: String::new(),
        host: String::new(),
        port: 22,
        login: String::new(),
        description: None,
        auth_kind: "password".into(),
        has_secret: false,
        host_key_fingerprint: None,
    });
    let error: Signal<Option<ApiError>> = last_error(action.value());
    let group_options = groups
        .iter()
        .map(|g| {
            let selected = g.path == s.group_path;
            view! {
                <option value=g.path.clone() selected=selected>
                    {g.path.clone()}
                </option>
            }
        })
        .collect_view();
    let kind = s.auth_kind.clone();
    let secret_hint = if editing {
        "Leave the secret fields empty to keep the stored credential."
    } else {
        "The secret is sealed in the vault and never shown again."
    };
    let form_id = if editing {
        format!("edit-server-{}", s.name)
    } else {
        "add-server-form".to_string()
    };
    view! {
        <ActionForm action attr:id=form_id attr:class="server-form">
            <CsrfField token=csrf />
            <input type="hidden" name="server[original_name]" value=s.name.clone() />
            <div class="grid">
                <label>
                    "Name (what users type and see)"
                    <input name="server[name]" type="text" required value=s.name.clone() />
                </label>
                <label>
                    "Group"
                    <select name="server[group]" required>
                        {group_options}
                    </select>
                </label>
                <label>
                    "Host"
                    <input name="server[host]" type="text" required value=s.host.clone() />
                </label>
                <label>
                    "Port"
                    <input name="server[port]" type="text" inputmode="numeric" value=s.port.to_string() />
                </label>
                <label>
                    "Login user on the target"
                    <input name="server[login]" type="text" required value=s.login.clone() />
                </label>
                <label>
                    "Description"
                    <input
                        name="server[description]"
                        type="text"
                        value=s.description.clone().unwrap_or_default()
                    />
                </label>
            </div>
            <label>
                "The gateway signs in to the target with"
                <select name="server[auth_kind]">
                    <option value="password" selected=kind == "password">
                        "a stored password"
                    </option>
                    <option value="private_key" selected=kind == "private_key">
                        "a stored private key"
                    </option>
                    <option value="gateway_key" selected=kind == "gateway_key">
                        "the gateway key (shown below)"
                    </option>
                </select>
            </label>
            <p class="muted">{secret_hint}</p>
            <label>
                "Target password"
                <input name="server[password]" type="password" autocomplete="new-password" />
            </label>
            <label>
                "Private key (OpenSSH or PEM)"
                <textarea name="server[private_key]" rows="4" spellcheck="false"></textarea>
            </label>
            <label>
                "Key passphrase (if the key has one)"
                <input name="server[passphrase]" type="password" autocomplete="new-password" />
            </label>
            {(!editing).then(|| view! { <ErrorLine error /> })}
            <button type="submit">{if editing { "Save server" } else { "Add server" }}</button>
        </ActionForm>
    }
}
