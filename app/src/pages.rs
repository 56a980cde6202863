//! The panel's pages.

use leptos::prelude::*;

use crate::SessionResource;
use crate::api::{
    AddSshKey, ApiError, ChangePassword, DeleteSshKey, Login, LoginStep, LoginTotp, Me,
    SetSecurityCode, SshKeySummary, TotpBegin, TotpConfirm, TotpDisable, ssh_keys,
};
use crate::components::{CsrfField, ErrorLine, reload_to, when};

/// The error of an action's last run, as a signal for [`ErrorLine`].
fn last_error<T, S>(value: S) -> Signal<Option<ApiError>>
where
    T: 'static,
    S: Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
{
    Signal::derive(move || value.get().and_then(|r| r.err()))
}

/// True once an action's last run succeeded.
fn succeeded<T, S>(value: S) -> Signal<bool>
where
    T: 'static,
    S: Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
{
    Signal::derive(move || matches!(value.get(), Some(Ok(_))))
}

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Go to the start page."</a></p>
        </section>
    }
}

#[component]
pub fn Home() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(info) => {
                        match info.user {
                            Some(user) if user.must_change_password => {
                                view! { <ForcedPasswordChange csrf=info.csrf_token /> }.into_any()
                            }
                            Some(user) => view! { <Welcome user /> }.into_any(),
                            None => view! { <NotSignedIn /> }.into_any(),
                        }
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn NotSignedIn() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Signed out"</h1>
            <p>
                "You are not signed in. "
                <a href=crate::paths::LOGIN>"Sign in"</a>
            </p>
        </section>
    }
}

#[component]
fn Welcome(user: Me) -> impl IntoView {
    let name = user
        .display_name
        .clone()
        .unwrap_or_else(|| user.username.clone());
    let totp_hint = (!user.totp_enabled).then(|| {
        view! {
            <p class="notice">
                "Two-factor authentication is off for your account. "
                <a href=crate::paths::ACCOUNT>"Set up an authenticator app"</a>
                " to protect it."
            </p>
        }
    });
    view! {
        <section class="card">
            <h1>"Welcome, " {name}</h1>
            <p>"You are signed in as " <strong>{user.username.clone()}</strong> " (" {user.role.clone()} ")."</p>
            {totp_hint}
            <p>
                <a class="button" href=crate::paths::CONSOLE>"Open Web SSH Console"</a>
            </p>
        </section>
        <MyServers />
    }
}

/// The servers the user may reach: the same answer the SSH menu and the browser console give.
#[component]
fn MyServers() -> impl IntoView {
    let servers = Resource::new(|| (), |_| crate::inventory::my_servers());
    view! {
        <section class="card">
            <h2>"Your servers"</h2>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match servers.await {
                        Ok(list) if list.is_empty() => {
                            view! {
                                <p class="muted" data-testid="no-servers">
                                    "No servers are granted to you yet. Ask an administrator for access."
                                </p>
                            }
                                .into_any()
                        }
                        Ok(list) => {
                            let rows = list
                                .into_iter()
                                .map(|s| {
                                    view! {
                                        <li data-my-server=s.name.clone()>
                                            <strong>{s.name.clone()}</strong>
                                            <span class="muted">
                                                {format!(" {}", s.group_path)}
                                                {s
                                                    .description
                                                    .clone()
                                                    .map(|d| format!(" — {d}"))
                                                    .unwrap_or_default()}
                                            </span>
                                        </li>
                                    }
                                })
                                .collect_view();
                            view! { <ul class="my-servers">{rows}</ul> }.into_any()
                        }
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn ForcedPasswordChange(csrf: String) -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Choose a new password"</h1>
            <p class="notice">
                "Your password was set by an administrator or at installation. Choose your own before you continue."
            </p>
            <PasswordForm csrf reload_after=true />
        </section>
    }
}

#[component]
pub fn Login() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    let login = ServerAction::<Login>::new();
    let totp = ServerAction::<LoginTotp>::new();

    Effect::new(move |_| {
        if let Some(Ok(LoginStep::SignedIn)) = login.value().get() {
            reload_to("/");
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = totp.value().get() {
            reload_to("/");
        }
    });

    let login_error = last_error(login.value());
    let totp_error = last_error(totp.value());

    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let info = match session.await {
                    Ok(info) => info,
                    Err(e) => return view! { <p class="error">{e.to_string()}</p> }.into_any(),
                };
                if let Some(user) = info.user.clone() {
                    return view! {
                        <section class="card">
                            <h1>"Already signed in"</h1>
                            <p>"You are signed in as " {user.username} ". " <a href="/">"Continue"</a></p>
                        </section>
                    }
                        .into_any();
                }
                let csrf = info.csrf_token.clone();
                let csrf2 = csrf.clone();
                let awaiting = info.awaiting_totp;
                let show_totp = move || {
                    awaiting || matches!(login.value().get(), Some(Ok(LoginStep::TotpRequired)))
                };
                view! {
                    <section class="card narrow">
                        <h1>"Sign in to Jumpgate"</h1>
                        <Show
                            when=show_totp
                            fallback=move || {
                                let csrf = csrf.clone();
                                view! {
                                    <ActionForm action=login attr:id="login-form">
                                        <CsrfField token=csrf />
                                        <label>
                                            "User name or email"
                                            <input name="login" type="text" autocomplete="username" required autofocus />
                                        </label>
                                        <label>
                                            "Password"
                                            <input name="password" type="password" autocomplete="current-password" required />
                                        </label>
                                        <ErrorLine error=login_error />
                                        <button type="submit">"Sign in"</button>
                                    </ActionForm>
                                }
                            }
                        >
                            <TotpStepForm action=totp csrf=csrf2.clone() error=totp_error />
                        </Show>
                    </section>
                }
                    .into_any()
            })}
        </Suspense>
    }
}

#[component]
fn TotpStepForm(
    action: ServerAction<LoginTotp>,
    csrf: String,
    error: Signal<Option<ApiError>>,
) -> impl IntoView {
    view! {
        <ActionForm action attr:id="totp-form">
            <CsrfField token=csrf />
            <p>"Enter the 6-digit code from your authenticator app."</p>
            <label>
                "Verification code"
                <input
                    name="code"
                    type="text"
                    inputmode="numeric"
                    autocomplete="one-time-code"
                    pattern="[0-9 ]*"
                    required
                    autofocus
                />
            </label>
            <ErrorLine error />
            <button type="submit">"Verify"</button>
        </ActionForm>
        <p class="hint">
            <a href=crate::paths::LOGIN>"Start again"</a>
        </p>
    }
}

/// The change-password form. With `reload_after`, a success reloads the start page (used when
/// the change was forced, since the rest of the panel was locked until now).
#[component]
fn PasswordForm(csrf: String, #[prop(optional)] reload_after: bool) -> impl IntoView {
    let action = ServerAction::<ChangePassword>::new();
    let error = last_error(action.value());
    let done = succeeded(action.value());
    Effect::new(move |_| {
        if reload_after && done.get() {
            reload_to("/");
        }
    });
    view! {
        <ActionForm action attr:id="password-form">
            <CsrfField token=csrf />
            <label>
                "Current password"
                <input name="current" type="password" autocomplete="current-password" required />
            </label>
            <label>
                "New password"
                <input name="new" type="password" autocomplete="new-password" minlength="10" required />
            </label>
            <label>
                "Confirm new password"
                <input name="confirm" type="password" autocomplete="new-password" minlength="10" required />
            </label>
            <p class="hint">"At least 10 characters. A long passphrase is best."</p>
            <ErrorLine error />
            <Show when=move || done.get()>
                <p class="success" role="status">"Your password has been changed."</p>
            </Show>
            <button type="submit">"Change password"</button>
        </ActionForm>
    }
}

#[component]
pub fn Account() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let info = match session.await {
                    Ok(info) => info,
                    Err(e) => return view! { <p class="error">{e.to_string()}</p> }.into_any(),
                };
                let Some(user) = info.user.clone() else {
                    return view! { <NotSignedIn /> }.into_any();
                };
                if user.must_change_password {
                    return view! { <ForcedPasswordChange csrf=info.csrf_token /> }.into_any();
                }
                let csrf = info.csrf_token.clone();
                view! {
                    <h1>"Account"</h1>
                    <section class="card">
                        <h2>"Profile"</h2>
                        <dl class="facts">
                            <dt>"User name"</dt>
                            <dd>{user.username.clone()}</dd>
                            <dt>"Email"</dt>
                            <dd>{user.email.clone().unwrap_or_else(|| "—".into())}</dd>
                            <dt>"Role"</dt>
                            <dd>{user.role.clone()}</dd>
                        </dl>
                    </section>
                    <section class="card">
                        <h2>"Password"</h2>
                        <PasswordForm csrf=csrf.clone() />
                    </section>
                    <section class="card">
                        <h2>"Security code"</h2>
                        <SecurityCodeForm csrf=csrf.clone() has_code=user.has_security_code />
                    </section>
                    <section class="card">
                        <h2>"Two-factor authentication"</h2>
                        <TotpSection csrf=csrf.clone() enabled=user.totp_enabled />
                    </section>
                    <section class="card">
                        <h2>"SSH keys"</h2>
                        <SshKeysSection csrf=csrf.clone() />
                    </section>
                }
                    .into_any()
            })}
        </Suspense>
    }
}

#[component]
fn SshKeysSection(csrf: String) -> impl IntoView {
    let add = ServerAction::<AddSshKey>::new();
    let delete = ServerAction::<DeleteSshKey>::new();
    let keys = Resource::new(
        move || (add.version().get(), delete.version().get()),
        |_| ssh_keys(),
    );
    let add_error = last_error(add.value());
    let delete_error = last_error(delete.value());
    let added = succeeded(add.value());
    let csrf_rows = csrf.clone();
    view! {
        <p class="hint">
            "A registered key signs you in to the SSH gateway instead of your password and security code. "
            "When two-factor authentication is on, the gateway still asks for the verification code."
        </p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                let csrf = csrf_rows.clone();
                keys.get()
                    .map(move |list| match list {
                        Ok(list) if list.is_empty() => {
                            view! { <p data-testid="no-ssh-keys">"No SSH keys are registered."</p> }
                                .into_any()
                        }
                        Ok(list) => view! { <SshKeyTable list csrf delete /> }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
        <ErrorLine error=delete_error />
        <ActionForm action=add attr:id="ssh-key-form">
            <CsrfField token=csrf />
            <label>
                "Name (optional; defaults to the key's comment)"
                <input name="name" type="text" autocomplete="off" maxlength="100" />
            </label>
            <label>
                "Public key (one line, as in id_ed25519.pub)"
                <textarea name="public_key" rows="3" required spellcheck="false"></textarea>
            </label>
            <ErrorLine error=add_error />
            <Show when=move || added.get()>
                <p class="success" role="status">"The key has been added."</p>
            </Show>
            <button type="submit">"Add key"</button>
        </ActionForm>
    }
}

#[component]
fn SshKeyTable(
    list: Vec<SshKeySummary>,
    csrf: String,
    delete: ServerAction<DeleteSshKey>,
) -> impl IntoView {
    view! {
        <table class="list">
            <thead>
                <tr>
                    <th>"Name"</th>
                    <th>"Fingerprint"</th>
                    <th>"Added"</th>
                    <th>"Last used"</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>
                {list
                    .into_iter()
                    .map(|k| {
                        let csrf = csrf.clone();
                        view! {
                            <tr data-ssh-key=k.name.clone()>
                                <td>{k.name.clone()}</td>
                                <td>
                                    <code>{format!("{} {}", k.algorithm, k.fingerprint)}</code>
                                </td>
                                <td>{when(Some(k.created_at))}</td>
                                <td>{when(k.last_used_at)}</td>
                                <td>
                                    <ActionForm action=delete>
                                        <CsrfField token=csrf />
                                        <input type="hidden" name="id" value=k.id.to_string() />
                                        <button type="submit" class="danger">"Remove"</button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn SecurityCodeForm(csrf: String, has_code: bool) -> impl IntoView {
    let action = ServerAction::<SetSecurityCode>::new();
    let error = last_error(action.value());
    let done = succeeded(action.value());
    let state = move || {
        if has_code || done.get() {
            "A security code is set. Setting a new one replaces it."
        } else {
            "No security code is set yet. SSH sign-in through the gateway asks for it after your password."
        }
    };
    view! {
        <p data-testid="security-code-state">{state}</p>
        <ActionForm action attr:id="security-code-form">
            <CsrfField token=csrf />
            <label>
                "Current password"
                <input name="current_password" type="password" autocomplete="current-password" required />
            </label>
            <label>
                "New security code"
                <input name="code" type="password" autocomplete="off" minlength="6" required />
            </label>
            <label>
                "Confirm security code"
                <input name="confirm" type="password" autocomplete="off" minlength="6" required />
            </label>
            <p class="hint">"At least 6 characters, different from your password."</p>
            <ErrorLine error />
            <Show when=move || done.get()>
                <p class="success" role="status">"Your security code has been saved."</p>
            </Show>
            <button type="submit">"Save security code"</button>
        </ActionForm>
    }
}

#[component]
fn TotpSection(csrf: String, enabled: bool) -> impl IntoView {
    // The state shown here follows this section's own actions. Refetching the session resource
    // instead would re-render the whole page and wipe the confirmation messages.
    let begin = ServerAction::<TotpBegin>::new();
    let confirm = ServerAction::<TotpConfirm>::new();
    let disable = ServerAction::<TotpDisable>::new();

    let confirmed = succeeded(confirm.value());
    let disabled = succeeded(disable.value());
    let is_enabled = move || (enabled || confirmed.get()) && !disabled.get();

    let begin_error = last_error(begin.value());
    let confirm_error = last_error(confirm.value());
    let disable_error = last_error(disable.value());
    let csrf_a = csrf.clone();
    let csrf_b = csrf.clone();
    let csrf_c = csrf;

    let enrollment = move || match begin.value().get() {
        Some(Ok(e)) => Some(e),
        _ => None,
    };

    view! {
        <Show
            when=is_enabled
            fallback=move || {
                let csrf_a = csrf_a.clone();
                let csrf_b = csrf_b.clone();
                view! {
                    <p data-testid="totp-state">"Two-factor authentication is off."</p>
                    <Show when=move || disabled.get()>
                        <p class="success" role="status">"Two-factor authentication has been turned off."</p>
                    </Show>
                    {move || match enrollment() {
                        None => {
                            let csrf_a = csrf_a.clone();
                            view! {
                                <ActionForm action=begin attr:id="totp-begin-form">
                                    <CsrfField token=csrf_a />
                                    <ErrorLine error=begin_error />
                                    <button type="submit">"Set up authenticator app"</button>
                                </ActionForm>
                            }
                                .into_any()
                        }
                        Some(e) => {
                            let csrf_b = csrf_b.clone();
                            let src = format!("data:image/png;base64,{}", e.qr_png_base64);
                            view! {
                                <div class="totp-enroll">
                                    <p>
                                        "Scan this QR code with your authenticator app, or enter the secret by hand. Then type the code the app shows to turn two-factor authentication on."
                                    </p>
                                    <img class="qr" src=src alt="QR code for the authenticator app" width="200" height="200" />
                                    <dl class="facts">
                                        <dt>"Secret"</dt>
                                        <dd><code data-testid="totp-secret">{e.secret.clone()}</code></dd>
                                        <dt>"URI"</dt>
                                        <dd><code class="wrap" data-testid="totp-uri">{e.uri.clone()}</code></dd>
                                    </dl>
                                    <ActionForm action=confirm attr:id="totp-confirm-form">
                                        <CsrfField token=csrf_b />
                                        <label>
                                            "Verification code"
                                            <input name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required />
                                        </label>
                                        <ErrorLine error=confirm_error />
                                        <button type="submit">"Turn on"</button>
                                    </ActionForm>
                                </div>
                            }
                                .into_any()
                        }
                    }}
                }
            }
        >
            <p data-testid="totp-state">"Two-factor authentication is on."</p>
            <Show when=move || confirmed.get()>
                <p class="success" role="status">"Two-factor authentication is now on. You will be asked for a code at each sign-in."</p>
            </Show>
            <TotpDisableForm action=disable csrf=csrf_c.clone() error=disable_error />
        </Show>
    }
}

#[component]
fn TotpDisableForm(
    action: ServerAction<TotpDisable>,
    csrf: String,
    error: Signal<Option<ApiError>>,
) -> impl IntoView {
    view! {
        <ActionForm action attr:id="totp-disable-form">
            <CsrfField token=csrf />
            <label>
                "Password"
                <input name="password" type="password" autocomplete="current-password" required />
            </label>
            <ErrorLine error />
            <button type="submit" class="danger">
                "Turn off two-factor authentication"
            </button>
        </ActionForm>
    }
}
