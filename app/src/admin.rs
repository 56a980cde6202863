//! Administrators' pages. The server refuses every action here to non-administrators; the
//! pages only avoid offering what would be refused.

use leptos::prelude::*;

use crate::SessionResource;
use crate::api::{
    AdminCreateUser, AdminResetPassword, AdminSetEnabled, ApiError, UserSummary, admin_users,
};
use crate::components::{CsrfField, ErrorLine};

fn last_error<T: 'static>(
    value: impl Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
) -> Signal<Option<ApiError>> {
    Signal::derive(move || value.get().and_then(|r| r.err()))
}

#[component]
pub fn AdminUsers() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    let create = ServerAction::<AdminCreateUser>::new();
    let set_enabled = ServerAction::<AdminSetEnabled>::new();
    let reset = ServerAction::<AdminResetPassword>::new();
    // The list reloads after each change.
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                set_enabled.version().get(),
                reset.version().get(),
            )
        },
        |_| admin_users(),
    );

    let create_error = last_error(create.value());
    let row_error = Signal::derive(move || {
        set_enabled
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| reset.value().get().and_then(|r| r.err()))
    });

    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let info = match session.await {
                    Ok(info) => info,
                    Err(e) => return view! { <p class="error">{e.to_string()}</p> }.into_any(),
                };
                let is_admin = info.user.as_ref().is_some_and(|u| u.role == "admin");
                if !is_admin {
                    return view! {
                        <section class="card">
                            <h1>"Users"</h1>
                            <p class="error">{ApiError::Forbidden.to_string()}</p>
                        </section>
                    }
                        .into_any();
                }
                let csrf = info.csrf_token.clone();
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
                                    <UserTable list csrf=csrf.clone() set_enabled reset />
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

/// A Unix time as a UTC date. Computed from the number alone, so the server's rendering and the
/// browser's hydration agree.
fn when(ts: Option<i64>) -> String {
    let Some(t) = ts else {
        return "never".into();
    };
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} (UTC)")
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn dates_are_civil_utc_dates() {
        assert_eq!(when(None), "never");
        assert_eq!(when(Some(0)), "1970-01-01 (UTC)");
        assert_eq!(when(Some(951_782_400)), "2000-02-29 (UTC)");
        assert_eq!(when(Some(1_796_256_000)), "2026-12-03 (UTC)");
    }
}

#[component]
fn UserTable(
    list: Vec<UserSummary>,
    csrf: String,
    set_enabled: ServerAction<AdminSetEnabled>,
    reset: ServerAction<AdminResetPassword>,
) -> impl IntoView {
    let rows = list
        .into_iter()
        .map(|u| {
            let active = u.status == "active";
            let toggle_label = if active { "Disable" } else { "Enable" };
            let name = u.username.clone();
            let name_for_toggle = name.clone();
            let row_name = name.clone();
            view! {
                <tr data-user=row_name>
                    <td>{u.username.clone()}</td>
                    <td>{u.email.clone().unwrap_or_else(|| "—".into())}</td>
                    <td>{u.role.clone()}</td>
                    <td data-testid="status">{u.status.clone()}</td>
                    <td>{if u.totp_enabled { "on" } else { "off" }}</td>
                    <td>{when(u.last_login_at)}</td>
                    <td class="actions">
                        <RowAction
                            action=set_enabled
                            csrf=csrf.clone()
                            username=name_for_toggle
                            enabled=Some(!active)
                            label=toggle_label
                        />
                        <ResetAction action=reset csrf=csrf.clone() username=name />
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
                    <th>"TOTP"</th>
                    <th>"Last sign-in"</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
fn RowAction(
    action: ServerAction<AdminSetEnabled>,
    csrf: String,
    username: String,
    enabled: Option<bool>,
    label: &'static str,
) -> impl IntoView {
    let enabled = enabled.unwrap_or(true).to_string();
    view! {
        <ActionForm action attr:class="inline">
            <CsrfField token=csrf />
            <input type="hidden" name="username" value=username />
            <input type="hidden" name="enabled" value=enabled />
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
