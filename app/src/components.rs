//! Pieces of page shared by several pages: the header and form helpers.

use leptos::prelude::*;

use crate::SessionResource;
use crate::api::{ApiError, AuthMethod, Logout};

/// Sends the browser to `path` with a full page load, so that every resource is fetched again
/// with the new session cookie.
pub fn reload_to(path: &str) {
    #[cfg(feature = "hydrate")]
    {
        let _ = window().location().set_href(path);
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = path;
    }
}

/// The CSRF token as a hidden form field.
#[component]
pub fn CsrfField(token: String) -> impl IntoView {
    view! { <input type="hidden" name=crate::api::CSRF_FIELD value=token /> }
}

/// Shows an action's error, if its last run failed.
#[component]
pub fn ErrorLine(error: Signal<Option<ApiError>>) -> impl IntoView {
    move || {
        error
            .get()
            .map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })
    }
}

#[component]
pub fn Header() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    let logout = ServerAction::<Logout>::new();

    Effect::new(move |_| {
        if let Some(Ok(())) = logout.value().get() {
            // The query lets a panel that signs in through SAML say "signed out" instead of
            // sending the browser straight back to the identity provider.
            reload_to(&format!("{}?signed_out=1", crate::paths::LOGIN));
        }
    });

    view! {
        <header class="topbar">
            <a class="brand" href="/">
                "Jumpgate"
            </a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let info = session.await.ok()?;
                    let user = info.user?;
                    let admin_link = (user.role == "admin")
                        .then(|| {
                            view! {
                                <a href=crate::paths::ADMIN_USERS>"Users"</a>
                                <a href=crate::paths::ADMIN_SERVERS>"Servers"</a>
                                <a href=crate::paths::ADMIN_ACCESS>"Access"</a>
                                <a href=crate::paths::ADMIN_SETTINGS>"Settings"</a>
                            }
                        });
                    Some(
                        view! {
                            <nav class="topnav">
                                <a href="/">"Home"</a>
                                <a href=crate::paths::CONSOLE>"Console"</a>
                                <a href=crate::paths::ACCOUNT>"Account"</a>
                                {admin_link}
                            </nav>
                            <span class="whoami" data-testid="whoami">
                                {user.username.clone()}
                            </span>
                            {if user.auth_method == AuthMethod::Saml {
                                // A plain form: the answer may send the browser on to the
                                // identity provider to end its session too (single logout).
                                view! {
                                    <form
                                        method="post"
                                        action=crate::paths::SAML_LOGOUT
                                        class="inline"
                                    >
                                        <SignOutFields token=info.csrf_token.clone() />
                                    </form>
                                }
                                    .into_any()
                            } else {
                                view! {
                                    <ActionForm action=logout attr:class="inline">
                                        <SignOutFields token=info.csrf_token.clone() />
                                    </ActionForm>
                                }
                                    .into_any()
                            }}
                        },
                    )
                })}
            </Suspense>
        </header>
    }
}

/// The inside of either sign-out form.
#[component]
fn SignOutFields(token: String) -> impl IntoView {
    view! {
        <CsrfField token=token />
        <button type="submit" class="secondary">
            "Sign out"
        </button>
    }
}

/// A Unix time as a UTC date. Computed from the number alone, so the server's rendering and the
/// browser's hydration agree.
pub fn when(ts: Option<i64>) -> String {
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
