//! The Access page: user groups with their members, and grants of server groups or single
//! servers to users and user groups.

use leptos::prelude::*;

use super::{admin_csrf, report};
use crate::SessionResource;
use crate::components::{CsrfField, ErrorLine};
use crate::inventory::{
    AdminAddGrant, AdminAddUserGroup, AdminDeleteUserGroup, AdminRemoveGrant, AdminSetMembership,
    Inventory, UserGroupInfo, admin_inventory, describe_ref,
};

#[derive(Clone, Copy)]
struct Actions {
    add_user_group: ServerAction<AdminAddUserGroup>,
    delete_user_group: ServerAction<AdminDeleteUserGroup>,
    membership: ServerAction<AdminSetMembership>,
    add_grant: ServerAction<AdminAddGrant>,
    remove_grant: ServerAction<AdminRemoveGrant>,
}

#[component]
pub fn AdminAccess() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    let actions = Actions {
        add_user_group: ServerAction::new(),
        delete_user_group: ServerAction::new(),
        membership: ServerAction::new(),
        add_grant: ServerAction::new(),
        remove_grant: ServerAction::new(),
    };
    let inventory = Resource::new(
        move || {
            (
                actions.add_user_group.version().get(),
                actions.delete_user_group.version().get(),
                actions.membership.version().get(),
                actions.add_grant.version().get(),
                actions.remove_grant.version().get(),
            )
        },
        |_| admin_inventory(),
    );
    let group_status = RwSignal::new(None);
    report(actions.add_user_group.value(), group_status);
    report(actions.delete_user_group.value(), group_status);
    report(actions.membership.value(), group_status);
    let grant_status = RwSignal::new(None);
    report(actions.add_grant.value(), grant_status);
    report(actions.remove_grant.value(), grant_status);

    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let csrf = match admin_csrf(session.await, "Access") {
                    Ok(csrf) => csrf,
                    Err(page) => return page,
                };
                let inv = match inventory.await {
                    Ok(inv) => inv,
                    Err(e) => return view! { <p class="error">{e.to_string()}</p> }.into_any(),
                };
                view! {
                    <h1>"Access"</h1>
                    <section class="card">
                        <h2>"Grants"</h2>
                        <p class="muted">
                            "A grant of a server group opens every server in it and in the groups below it. Administrators reach every server without grants."
                        </p>
                        <ErrorLine error=Signal::from(grant_status) />
                        <GrantList inv=inv.clone() csrf=csrf.clone() actions />
                        <GrantForm inv=inv.clone() csrf=csrf.clone() actions />
                    </section>
                    <section class="card">
                        <h2>"User groups"</h2>
                        <ErrorLine error=Signal::from(group_status) />
                        <UserGroupList inv=inv.clone() csrf=csrf.clone() actions />
                        <ActionForm action=actions.add_user_group attr:id="add-user-group-form">
                            <CsrfField token=csrf.clone() />
                            <label>
                                "New user group"
                                <input name="name" type="text" required autocomplete="off" />
                            </label>
                            <label>
                                "Description"
                                <input name="description" type="text" autocomplete="off" />
                            </label>
                            <button type="submit">"Add user group"</button>
                        </ActionForm>
                    </section>
                }
                    .into_any()
            })}
        </Suspense>
    }
}

#[component]
fn GrantList(inv: Inventory, csrf: String, actions: Actions) -> impl IntoView {
    if inv.grants.is_empty() {
        return view! { <p class="muted">"No grants yet: only administrators reach servers."</p> }
            .into_any();
    }
    let rows = inv
        .grants
        .into_iter()
        .map(|g| {
            let csrf = csrf.clone();
            view! {
                <tr data-grant=format!("{} {}", g.grantee, g.target)>
                    <td>{describe_ref(&g.grantee)}</td>
                    <td>{describe_ref(&g.target)}</td>
                    <td class="actions">
                        <ActionForm action=actions.remove_grant attr:class="inline">
                            <CsrfField token=csrf.clone() />
                            <input type="hidden" name="id" value=g.id.to_string() />
                            <button type="submit" class="small danger">"Revoke"</button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list">
            <thead>
                <tr>
                    <th>"Who"</th>
                    <th>"May reach"</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn GrantForm(inv: Inventory, csrf: String, actions: Actions) -> impl IntoView {
    let who = inv
        .usernames
        .iter()
        .map(|u| format!("user:{u}"))
        .chain(
            inv.user_groups
                .iter()
                .map(|g| format!("user-group:{}", g.name)),
        )
        .map(|value| view! { <option value=value.clone()>{describe_ref(&value)}</option> })
        .collect_view();
    let what = inv
        .groups
        .iter()
        .map(|g| format!("group:{}", g.path))
        .chain(inv.servers.iter().map(|s| format!("server:{}", s.name)))
        .map(|value| view! { <option value=value.clone()>{describe_ref(&value)}</option> })
        .collect_view();
    view! {
        <ActionForm action=actions.add_grant attr:id="add-grant-form">
            <CsrfField token=csrf />
            <div class="grid">
                <label>
                    "Grant"
                    <select name="grantee" required>
                        {who}
                    </select>
                </label>
                <label>
                    "access to"
                    <select name="target" required>
                        {what}
                    </select>
                </label>
            </div>
            <button type="submit">"Grant access"</button>
        </ActionForm>
    }
}

#[component]
fn UserGroupList(inv: Inventory, csrf: String, actions: Actions) -> impl IntoView {
    if inv.user_groups.is_empty() {
        return view! { <p class="muted">"No user groups yet."</p> }.into_any();
    }
    let usernames = inv.usernames.clone();
    inv.user_groups
        .into_iter()
        .map(|g| {
            view! {
                <UserGroupCard
                    group=g
                    usernames=usernames.clone()
                    csrf=csrf.clone()
                    actions
                />
            }
        })
        .collect_view()
        .into_any()
}

#[component]
fn UserGroupCard(
    group: UserGroupInfo,
    usernames: Vec<String>,
    csrf: String,
    actions: Actions,
) -> impl IntoView {
    let members = group
        .members
        .clone()
        .into_iter()
        .map(|m| {
            let csrf = csrf.clone();
            let group_name = group.name.clone();
            let username = m.clone();
            let label = m.clone();
            view! {
                <li data-member=m>
                    {label}
                    " "
                    <ActionForm action=actions.membership attr:class="inline">
                        <CsrfField token=csrf.clone() />
                        <input type="hidden" name="group" value=group_name />
                        <input type="hidden" name="username" value=username />
                        <input type="hidden" name="member" value="false" />
                        <button type="submit" class="small secondary-dark">"Remove"</button>
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    let candidates = usernames
        .iter()
        .filter(|u| !group.members.contains(u))
        .map(|u| view! { <option value=u.clone()>{u.clone()}</option> })
        .collect_view();
    let (csrf_add, csrf_delete) = (csrf.clone(), csrf);
    let (name_add, name_delete) = (group.name.clone(), group.name.clone());
    view! {
        <div class="user-group" data-user-group=group.name.clone()>
            <h3>
                {group.name.clone()}
                <span class="muted">
                    {group.description.clone().map(|d| format!(" — {d}")).unwrap_or_default()}
                </span>
            </h3>
            <ul>{members}</ul>
            <ActionForm action=actions.membership attr:class="inline">
                <CsrfField token=csrf_add />
                <input type="hidden" name="group" value=name_add />
                <input type="hidden" name="member" value="true" />
                <select name="username">{candidates}</select>
                <button type="submit" class="small">"Add member"</button>
            </ActionForm>
            " "
            <ActionForm action=actions.delete_user_group attr:class="inline">
                <CsrfField token=csrf_delete />
                <input type="hidden" name="name" value=name_delete />
                <button type="submit" class="small danger">"Delete group"</button>
            </ActionForm>
        </div>
    }
}
