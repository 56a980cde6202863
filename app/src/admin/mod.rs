//! Administrators' pages. The server refuses every action here to non-administrators; the
//! pages only avoid offering what would be refused.

mod access;
mod servers;
mod users;

pub use access::AdminAccess;
pub use servers::AdminServers;
pub use users::AdminUsers;

use leptos::prelude::*;

use crate::api::{ApiError, SessionInfo};

/// The error of an action's last run, if it failed.
fn last_error<T: 'static>(
    value: impl Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
) -> Signal<Option<ApiError>> {
    Signal::derive(move || value.get().and_then(|r| r.err()))
}

/// Copies the outcome of each finished run of an action into `status`, so that one line under
/// a list shows the result of whichever row action ran last.
fn report<T: 'static>(
    value: impl Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
    status: RwSignal<Option<ApiError>>,
) {
    Effect::new(move |_| {
        if let Some(result) = value.get() {
            status.set(result.err());
        }
    });
}

/// The CSRF token to put in forms when the visitor is an administrator, or the page to show
/// instead.
pub(crate) fn admin_csrf(
    info: Result<SessionInfo, ApiError>,
    title: &'static str,
) -> Result<String, AnyView> {
    let info = match info {
        Ok(info) => info,
        Err(e) => return Err(view! { <p class="error">{e.to_string()}</p> }.into_any()),
    };
    if info.user.as_ref().is_some_and(|u| u.role == "admin") {
        return Ok(info.csrf_token);
    }
    Err(view! {
        <section class="card">
            <h1>{title}</h1>
            <p class="error">{ApiError::Forbidden.to_string()}</p>
        </section>
    }
    .into_any())
}
