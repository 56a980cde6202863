//! The Users page: add, edit, disable and delete users, and reset their secrets.

use leptos::prelude::*;

use super::{admin_csrf, last_error, report};
use crate::SessionResource;
use crate::api::{
    AdminCreateUser, AdminResetPassword, AdminSetEnabled, AdminUpdateUser, AdminUserAction,
    ApiError, UserAction, UserSummary, admin_users,
};
use crate::components::{CsrfField, ErrorLine, when};

#[component]
pub fn AdminUsers() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    let create = ServerAction::<AdminCreateUser>::new();
    let set_enabled = ServerAction::<AdminSetEnabled>::new();
    let reset = ServerAction::<AdminResetPassword>::new();
    let update = ServerAction::<AdminUpdateUser>::new();
    let act = ServerAction::<AdminUserAction>::new();
    let row_actions = RowActions {
        set_enabled,
        reset,
        update,
        act,
    };
    // The list reloads after each change.
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                set_enabled.version().get(),
                reset.version().get(),
                update.version().get(),
                act.version().get(),
            )
        },
        |_| admin_users(),
    );

    let create_error = last_error(create.value());
    let status = RwSignal::new(None);
    report(set_enabled.value(), status);
    report(reset.value(), status);
    report(update.value(), status);
    report(act.value(), status);
    let row_error = Signal::from(status);

    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let csrf = match admin_csrf(session.await, "Users") {
                    Ok(csrf) => csrf,
                    Err(page) => return page,
                };
                let list = users.await;
                view! {
                    <h1>"Users"</h1>
                    <section class="card">
                        <h2>"Add a user"</h2>
                        <CreateUserForm action=create csrf=csrf.clone() error=create_error />
                        {move || {
                            create
                                .value()
                                .get()
                                .and_then(|r| r.ok())
                                .map(|otp| {
                                    view! {
                                        <p class="success" role="status">
                                            "User created. One-time password (shown once; the user must change it at first sign-in): "
                                            <code data-testid="new-user-password">{otp}</code>
                                        </p>
                                    }
                                })
                        }}
                    </section>
                    <section class="card">
                        <h2>"All users"</h2>
                        <ErrorLine error=row_error />
                        {move || {
                            reset
                                .value()
                                .get()
                                .and_then(|r| r.ok())
                                .map(|otp| {
                                    view! {
                                        <p class="success" role="status">
                                            "Password reset. New one-time password (shown once): "
                                            <code data-testid="reset-password">{otp}</code>
                                        </p>
                                    }
                                })
                        }}
                        {match list {
                            Ok(list) => {
                                view! {
                                    <UserTable list csrf=csrf.clone() actions=row_actions />
                                }
                                    .into_any()
                            }
                            Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                        }}
                    </section>
                }
                    .into_any()
            })}
        </Suspense>
    }
}

#[component]
fn CreateUserForm(
    action: ServerAction<AdminCreateUser>,
    csrf: String,
    error: Signal<Option<ApiError>>,
) -> impl IntoView {
    view! {
        <ActionForm action attr:id="create-user-form">
            <CsrfField token=csrf />
            <label>
                "User name"
                <input name="username" type="text" required autocomplete="off" />
            </label>
            <label>
                "Email (optional; used to match single sign-on accounts)"
                <input name="email" type="email" autocomplete="off" />
            </label>
            <label>
                "Role"
                <select name="role">
                    <option value="user" selected>"User"</option>
                    <option value="admin">"Administrator"</option>
                </select>
            </label>
            <ErrorLine error />
            <button type="submit">"Add user"</button>
        </ActionForm>
    }
}

#[cfg(test)]
mod tests {
    use crate::components::when;

    #[test]
    fn dates_are_civil_utc_dates() {
        assert_eq!(when(None), "never");
        assert_eq!(when(Some(0)), "1970-01-01 (UTC)");
        assert_eq!(when(Some(951_782_400)), "2000-02-29 (UTC)");
        assert_eq!(when(Some(1_796_256_000)), "2026-12-03 (UTC)");
    }
}

/// The actions a row of the user table can start.
#[derive(Clone, Copy)]
struct RowActions {
    set_enabled: ServerAction<AdminSetEnabled>,
    reset: ServerAction<AdminResetPassword>,
    update: ServerAction<AdminUpdateUser>,
    act: ServerAction<AdminUserAction>,
}

#[component]
fn UserTable(list: Vec<UserSummary>, csrf: String, actions: RowActions) -> impl IntoView {
    let rows = list
        .into_iter()
        .map(|u| {
            let active = u.status == "active";
            let toggle_label = if active { "Disable" } else { "Enable" };
            let name = u.username.clone();
            let security_code = if u.has_security_code {
                "set"
            } else {
                "not set"
            };
            view! {
                <tr data-user=name.clone()>
                    <td>
                        {u.username.clone()}
                        <span class="muted">
                            {u.display_name.clone().map(|d| format!(" ({d})")).unwrap_or_default()}
                        </span>
                    </td>
                    <td>{u.email.clone().unwrap_or_else(|| "—".into())}</td>
                    <td data-testid="role">{u.role.clone()}</td>
                    <td data-testid="status">{u.status.clone()}</td>
                    <td>{u.origin.clone()}</td>
                    <td data-testid="totp">{if u.totp_enabled { "on" } else { "off" }}</td>
                    <td data-testid="security-code">{security_code}</td>
                    <td>{when(u.last_login_at)}</td>
                    <td class="actions">
                        <EnableAction
                            action=actions.set_enabled
                            csrf=csrf.clone()
                            username=name.clone()
                            enabled=!active
                            label=toggle_label
                        />
                        <details class="more">
                            <summary>"More"</summary>
                            <EditUserForm action=actions.update csrf=csrf.clone() user=u.clone() />
                            <div class="row-buttons">
                                <ResetAction
                                    action=actions.reset
                                    csrf=csrf.clone()
                                    username=name.clone()
                                />
                                <UserActionButton
                                    action=actions.act
                                    csrf=csrf.clone()
                                    username=name.clone()
                                    what=UserAction::ResetSecurityCode
                                    label="Reset security code"
                                />
                                <UserActionButton
                                    action=actions.act
                                    csrf=csrf.clone()
                                    username=name.clone()
                                    what=UserAction::ResetTotp
                                    label="Reset TOTP"
                                />
                                <UserActionButton
                                    action=actions.act
                                    csrf=csrf.clone()
                                    username=name.clone()
                                    what=UserAction::Delete
                                    label="Delete user"
                                />
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
                    <th>"User"</th>
                    <th>"Email"</th>
                    <th>"Role"</th>
                    <th>"Status"</th>
                    <th>"Origin"</th>
                    <th>"TOTP"</th>
                    <th>"Security code"</th>
                    <th>"Last sign-in"</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
fn EnableAction(
    action: ServerAction<AdminSetEnabled>,
    csrf: String,
    username: String,
    enabled: bool,
    label: &'static str,
) -> impl IntoView {
    view! {
        <ActionForm action attr:class="inline">
            <CsrfField token=csrf />
            <input type="hidden" name="username" value=username />
            <input type="hidden" name="enabled" value=enabled.to_string() />
            <button type="submit" class="small">{label}</button>
        </ActionForm>
    }
}

#[component]
fn ResetAction(
    action: ServerAction<AdminResetPassword>,
    csrf: String,
    username: String,
) -> impl IntoView {
    view! {
        <ActionForm action attr:class="inline">
            <CsrfField token=csrf />
            <input type="hidden" name="username" value=username />
            <button type="submit" class="small secondary-dark">"Reset password"</button>
        </ActionForm>
    }
}

#[component]
fn UserActionButton(
    action: ServerAction<AdminUserAction>,
    csrf: String,
    username: String,
    what: UserAction,
    label: &'static str,
) -> impl IntoView {
    let class = if what == UserAction::Delete {
        "small danger"
    } else {
        "small secondary-dark"
    };
    view! {
        <ActionForm action attr:class="inline">
            <CsrfField token=csrf />
            <input type="hidden" name="username" value=username />
            <input type="hidden" name="action" value=what.as_str() />
            <button type="submit" class=class>{label}</button>
        </ActionForm>
    }
}

#[component]
fn EditUserForm(
    action: ServerAction<AdminUpdateUser>,
    csrf: String,
    user: UserSummary,
) -> impl IntoView {
    let is_admin = user.role == "admin";
    view! {
        <ActionForm action attr:class="edit-user">
            <CsrfField token=csrf />
            <input type="hidden" name="username" value=user.username.clone() />
            <label>
                "Email"
                <input name="email" type="email" value=user.email.clone().unwrap_or_default() />
            </label>
            <label>
                "Display name"
                <input
                    name="display_name"
                    type="text"
                    value=user.display_name.clone().unwrap_or_default()
                />
            </label>
            <label>
                "Role"
                <select name="role">
                    <option value="user" selected=!is_admin>"User"</option>
                    <option value="admin" selected=is_admin>"Administrator"</option>
                </select>
            </label>
            <button type="submit" class="small">"Save"</button>
        </ActionForm>
    }
}
