//! The administrators' Settings page: general sign-in rules, two-factor authentication, and the
//! SAML connection to the company's identity provider, with the server functions behind it.
//!
//! The SAML section shows what the identity provider's administrator must copy (Entity ID, ACS
//! URL, metadata URL) and takes the IdP side from a metadata URL (Fetch), an uploaded or pasted
//! metadata XML, or by hand. Fetching only fills the form; nothing is stored until Save.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use server_fn::codec::GetUrl;

use crate::SessionResource;
use crate::api::ApiError;
use crate::components::{CsrfField, ErrorLine};

/// A trusted IdP signing certificate, summarised for the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    pub subject: String,
    /// Expiry date, `YYYY-MM-DD`.
    pub not_after: String,
    /// Days until expiry; negative once expired.
    pub days_left: i64,
    /// SHA-256 fingerprint, colon-separated hex.
    pub sha256: String,
}

/// The identity provider's side, as stored, fetched or read from pasted metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdpFields {
    pub entity_id: String,
    pub sso_url: String,
    /// `redirect` or `post`.
    pub sso_binding: String,
    pub slo_url: String,
    /// PEM, one block per trusted certificate.
    pub certificates_pem: String,
    pub certificates: Vec<CertificateInfo>,
}

/// An IdP group value mapped to a Jumpgate user group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMapping {
    pub id: i64,
    pub idp_value: String,
    pub user_group: String,
}

/// What the identity provider sent at the administrator's last test sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSignIn {
    /// When, `YYYY-MM-DD HH:MM UTC`.
    pub at: String,
    /// Every check passed.
    pub ok: bool,
    /// Why it was refused, when it was.
    pub reason: Option<String>,
    pub email: Option<String>,
    pub name_id: Option<String>,
    /// What a real sign-in with this assertion would do.
    pub account: Option<String>,
    pub groups: Vec<String>,
    pub attributes: Vec<(String, Vec<String>)>,
}

/// Everything the Settings page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    /// `password` or `saml`.
    pub web_auth: String,
    pub auto_create_users: bool,
    pub skip_2fa: bool,
    /// Native SSH sign-in approved in a browser signed in through SAML.
    pub ssh_browser_approval: bool,
    pub sp_entity_id: String,
    pub sp_acs_url: String,
    pub sp_metadata_url: String,
    /// The public URL names an IP address: IdPs such as AWS IAM Identity Center want a name.
    pub sp_host_is_ip: bool,
    pub metadata_url: String,
    /// What the automatic metadata refresh did last, in a sentence; None before the first run.
    pub metadata_refresh: Option<String>,
    /// The last refresh failed (the stored metadata is the last good one).
    pub metadata_refresh_failed: bool,
    pub idp: IdpFields,
    pub email_attribute: String,
    pub username_attribute: String,
    pub display_name_attribute: String,
    pub groups_attribute: String,
    pub allow_idp_initiated: bool,
    pub sign_requests: bool,
    pub clock_skew_seconds: i64,
    pub group_mappings: Vec<GroupMapping>,
    /// Names of all user groups, for the mapping form.
    pub user_groups: Vec<String>,
    pub last_test: Option<TestSignIn>,
}

/// The SAML form as the browser sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlForm {
    pub metadata_url: String,
    pub idp_entity_id: String,
    pub idp_sso_url: String,
    pub idp_sso_binding: String,
    pub idp_slo_url: String,
    pub idp_certificates: String,
    pub email_attribute: String,
    pub username_attribute: String,
    pub display_name_attribute: String,
    pub groups_attribute: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    pub allow_idp_initiated: Option<String>,
    /// A checkbox: present when ticked.
    #[serde(default)]
    pub sign_requests: Option<String>,
    pub clock_skew_seconds: String,
}

#[cfg(feature = "ssr")]
pub mod backend {
    //! What the server crate implements for this page. Every method refuses
    //! non-administrators with [`ApiError::Forbidden`].

    use super::*;
    use crate::api::backend::RequestContext;
    use std::sync::Arc;

    #[async_trait::async_trait]
    pub trait SettingsBackend: Send + Sync + 'static {
        async fn settings(&self, ctx: &RequestContext) -> Result<SettingsView, ApiError>;
        async fn save_general(
            &self,
            ctx: &RequestContext,
            web_auth: String,
            auto_create_users: bool,
        ) -> Result<(), ApiError>;
        async fn save_two_factor(
            &self,
            ctx: &RequestContext,
            skip_2fa: bool,
            ssh_browser_approval: bool,
        ) -> Result<(), ApiError>;
        async fn save_saml(&self, ctx: &RequestContext, form: SamlForm) -> Result<(), ApiError>;
        /// Downloads the IdP's metadata and reads it, storing nothing.
        async fn fetch_metadata(
            &self,
            ctx: &RequestContext,
            url: String,
        ) -> Result<IdpFields, ApiError>;
        /// Reads pasted metadata XML, storing nothing.
        async fn read_metadata(
            &self,
            ctx: &RequestContext,
            xml: String,
        ) -> Result<IdpFields, ApiError>;
        async fn add_group_mapping(
            &self,
            ctx: &RequestContext,
            idp_value: String,
            user_group: String,
        ) -> Result<(), ApiError>;
        async fn remove_group_mapping(&self, ctx: &RequestContext, id: i64)
        -> Result<(), ApiError>;
    }

    pub type SharedSettings = Arc<dyn SettingsBackend>;

    pub fn current() -> Result<(SharedSettings, RequestContext), ApiError> {
        let backend = use_context::<SharedSettings>().ok_or(ApiError::Internal)?;
        let (_, ctx) = crate::api::backend::current()?;
        Ok((backend, ctx))
    }
}

#[server(input = GetUrl, endpoint = "admin/settings")]
pub async fn admin_settings() -> Result<SettingsView, ApiError> {
    let (backend, ctx) = backend::current()?;
    backend.settings(&ctx).await
}

#[server(endpoint = "admin/settings/general")]
pub async fn save_general_settings(
    csrf_token: String,
    web_auth: String,
    auto_create_users: Option<String>,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend
        .save_general(&ctx, web_auth, auto_create_users.is_some())
        .await
}

#[server(endpoint = "admin/settings/two_factor")]
pub async fn save_two_factor_settings(
    csrf_token: String,
    skip_2fa: Option<String>,
    ssh_browser_approval: Option<String>,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend
        .save_two_factor(&ctx, skip_2fa.is_some(), ssh_browser_approval.is_some())
        .await
}

#[server(endpoint = "admin/settings/saml")]
pub async fn save_saml_settings(csrf_token: String, saml: SamlForm) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.save_saml(&ctx, saml).await
}

#[server(endpoint = "admin/settings/saml/fetch")]
pub async fn fetch_saml_metadata(
    csrf_token: String,
    metadata_url: String,
) -> Result<IdpFields, ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.fetch_metadata(&ctx, metadata_url).await
}

#[server(endpoint = "admin/settings/saml/read")]
pub async fn read_saml_metadata(csrf_token: String, xml: String) -> Result<IdpFields, ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.read_metadata(&ctx, xml).await
}

#[server(endpoint = "admin/settings/saml/group_mapping")]
pub async fn add_saml_group_mapping(
    csrf_token: String,
    idp_value: String,
    user_group: String,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.add_group_mapping(&ctx, idp_value, user_group).await
}

#[server(endpoint = "admin/settings/saml/group_mapping/remove")]
pub async fn remove_saml_group_mapping(csrf_token: String, id: i64) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.remove_group_mapping(&ctx, id).await
}

/// The Settings page.
#[component]
pub fn AdminSettings() -> impl IntoView {
    let session = expect_context::<SessionResource>();
    let general = ServerAction::<SaveGeneralSettings>::new();
    let two_factor = ServerAction::<SaveTwoFactorSettings>::new();
    let saml = ServerAction::<SaveSamlSettings>::new();
    let add_mapping = ServerAction::<AddSamlGroupMapping>::new();
    let remove_mapping = ServerAction::<RemoveSamlGroupMapping>::new();
    let settings = Resource::new(
        move || {
            (
                general.version().get(),
                two_factor.version().get(),
                saml.version().get(),
                add_mapping.version().get(),
                remove_mapping.version().get(),
            )
        },
        |_| admin_settings(),
    );

    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let csrf = match crate::admin::admin_csrf(session.await, "Settings") {
                    Ok(csrf) => csrf,
                    Err(page) => return page,
                };
                let view_data = match settings.await {
                    Ok(v) => v,
                    Err(e) => return view! { <p class="error">{e.to_string()}</p> }.into_any(),
                };
                view! {
                    <h1>"Settings"</h1>
                    <GeneralSection action=general csrf=csrf.clone() data=view_data.clone() />
                    <TwoFactorSection action=two_factor csrf=csrf.clone() data=view_data.clone() />
                    <SamlSection action=saml csrf=csrf.clone() data=view_data.clone() />
                    <GroupMappingSection
                        add=add_mapping
                        remove=remove_mapping
                        csrf=csrf.clone()
                        data=view_data.clone()
                    />
                    <TestSection data=view_data />
                }
                    .into_any()
            })}
        </Suspense>
    }
}

/// "Saved." after a successful run, the error after a failed one.
#[component]
fn Outcome(value: Signal<Option<Result<(), ApiError>>>) -> impl IntoView {
    let error = Signal::derive(move || value.get().and_then(|r| r.err()));
    view! {
        <ErrorLine error=error />
        {move || {
            matches!(value.get(), Some(Ok(())))
                .then(|| view! { <p class="success" role="status">"Saved."</p> })
        }}
    }
}

#[component]
fn GeneralSection(
    action: ServerAction<SaveGeneralSettings>,
    csrf: String,
    data: SettingsView,
) -> impl IntoView {
    let saml_on = data.web_auth == "saml";
    view! {
        <section class="card" aria-labelledby="settings-general">
            <h2 id="settings-general">"General"</h2>
            <ActionForm action=action attr:id="general-form">
                <CsrfField token=csrf />
                <label>
                    "Web Panel Authentication"
                    <select name="web_auth">
                        <option value="password" selected=!saml_on>
                            "Password"
                        </option>
                        <option value="saml" selected=saml_on>
                            "SAML"
                        </option>
                    </select>
                </label>
                <p class="hint">
                    "With SAML, the panel sends people to your identity provider. Administrators keep a password sign-in at "
                    <code>{crate::paths::LOCAL_LOGIN}</code> "; on the host, "
                    <code>"jumpgate settings set web_auth password"</code> " switches back."
                </p>
                <h3>"Security"</h3>
                <label class="check">
                    <input
                        type="checkbox"
                        name="auto_create_users"
                        value="on"
                        checked=data.auto_create_users
                    />
                    "Enable auto create user"
                </label>
                <p class="hint">
                    "People who sign in through SAML for the first time get a user account, matched by email."
                </p>
                <Outcome value=Signal::from(action.value()) />
                <button type="submit">"Save"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn TwoFactorSection(
    action: ServerAction<SaveTwoFactorSettings>,
    csrf: String,
    data: SettingsView,
) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="settings-2fa">
            <h2 id="settings-2fa">"Two-factor authentication"</h2>
            <ActionForm action=action attr:id="two-factor-form">
                <CsrfField token=csrf />
                <label class="check">
                    <input type="checkbox" name="skip_2fa" value="on" checked=data.skip_2fa />
                    "Skip two-factor authentication for SAML"
                </label>
                <p class="hint">
                    "SSH sign-in then skips the verification code while the person holds a live panel session that came through SAML; otherwise it asks as usual. Signing out of the panel ends SSH connections opened that way."
                </p>
                <label class="check">
                    <input
                        type="checkbox"
                        name="ssh_browser_approval"
                        value="on"
                        checked=data.ssh_browser_approval
                    />
                    "Approve SSH sign-ins in the browser"
                </label>
                <p class="hint">
                    "Instead of password and security code, the SSH client shows a link and a code; the person approves it in a browser signed in through SAML, which names the client's address and time. Codes expire within two minutes and work once. Signing out of the panel, or being disabled, ends SSH connections approved that way. Typing a password at the prompt still signs in the usual way."
                </p>
                <Outcome value=Signal::from(action.value()) />
                <button type="submit">"Save"</button>
            </ActionForm>
        </section>
    }
}

fn certificate_list(certs: Vec<CertificateInfo>) -> impl IntoView {
    if certs.is_empty() {
        return view! { <p class="warning" role="alert">"No signing certificate: sign-in through SAML is refused until one is set."</p> }
            .into_any();
    }
    view! {
        <ul class="certs" data-testid="idp-certificates">
            {certs
                .into_iter()
                .map(|c| {
                    let state = if c.days_left < 0 {
                        "expired".to_string()
                    } else if c.days_left < 30 {
                        format!("expires in {} day(s): add the next certificate now", c.days_left)
                    } else {
                        format!("valid until {}", c.not_after)
                    };
                    let warn = c.days_left < 30;
                    view! {
                        <li class:warning=warn>
                            <strong>{c.subject}</strong>
                            " — "
                            {state}
                            <br />
                            <small>"SHA-256 " {c.sha256}</small>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}

/// Reads the file chosen in a file input as text and hands it to `then`; a file that is too
/// large or not text sets `error` instead.
#[cfg(feature = "hydrate")]
fn load_text_file(
    ev: leptos::ev::Event,
    then: impl FnOnce(String) + 'static,
    error: RwSignal<Option<String>>,
) {
    use wasm_bindgen::JsCast;
    // The server refuses larger metadata anyway; checking here only spares the upload.
    const MAX_BYTES: f64 = 1024.0 * 1024.0;
    let Some(file) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        .and_then(|input| input.files())
        .and_then(|files| files.get(0))
    else {
        return;
    };
    if file.size() > MAX_BYTES {
        error.set(Some(format!(
            "{} is larger than 1 MiB; metadata files are much smaller. Choose the IdP's metadata XML.",
            file.name()
        )));
        return;
    }
    leptos::task::spawn_local(async move {
        let text = wasm_bindgen_futures::JsFuture::from(file.text())
            .await
            .ok()
            .and_then(|v| v.as_string());
        match text {
            Some(text) => then(text),
            None => error.set(Some(format!("{} could not be read as text.", file.name()))),
        }
    });
}

/// Files are read in the browser only; the server-rendered page has nothing to read.
#[cfg(not(feature = "hydrate"))]
fn load_text_file(
    _ev: leptos::ev::Event,
    _then: impl FnOnce(String) + 'static,
    _error: RwSignal<Option<String>>,
) {
}

/// A text field kept in a signal, so that Fetch and pasted metadata can fill it in.
#[component]
fn BoundInput(
    label: &'static str,
    name: &'static str,
    kind: &'static str,
    value: RwSignal<String>,
) -> impl IntoView {
    view! {
        <label>
            {label}
            <input
                name=name
                type=kind
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
        </label>
    }
}

#[component]
fn SamlSection(
    action: ServerAction<SaveSamlSettings>,
    csrf: String,
    data: SettingsView,
) -> impl IntoView {
    let fetch = ServerAction::<FetchSamlMetadata>::new();
    let read = ServerAction::<ReadSamlMetadata>::new();

    let metadata_url = RwSignal::new(data.metadata_url.clone());
    let entity_id = RwSignal::new(data.idp.entity_id.clone());
    let sso_url = RwSignal::new(data.idp.sso_url.clone());
    let binding = RwSignal::new(data.idp.sso_binding.clone());
    let slo_url = RwSignal::new(data.idp.slo_url.clone());
    let certificates = RwSignal::new(data.idp.certificates_pem.clone());
    let cert_info = RwSignal::new(data.idp.certificates.clone());
    let pasted = RwSignal::new(String::new());
    let filled = RwSignal::new(None::<&'static str>);
    // Whether the XML being read came from a file or the paste box, for the message after it.
    let from_file = RwSignal::new(false);
    let upload_error = RwSignal::new(None::<String>);

    // A fetch or a paste fills the IdP fields; Save stores them.
    let fill = move |fields: IdpFields, how: &'static str| {
        entity_id.set(fields.entity_id);
        sso_url.set(fields.sso_url);
        binding.set(fields.sso_binding);
        slo_url.set(fields.slo_url);
        certificates.set(fields.certificates_pem);
        cert_info.set(fields.certificates);
        filled.set(Some(how));
    };
    Effect::new(move |_| {
        if let Some(Ok(fields)) = fetch.value().get() {
            fill(
                fields,
                "Filled in from the metadata URL. Check the fields, then Save.",
            );
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(fields)) = read.value().get() {
            let how = if from_file.get_untracked() {
                "Filled in from the metadata file. Check the fields, then Save."
            } else {
                "Filled in from the pasted metadata. Check the fields, then Save."
            };
            fill(fields, how);
        }
    });
    let fetch_error = Signal::derive(move || fetch.value().get().and_then(|r| r.err()));
    let read_error = Signal::derive(move || read.value().get().and_then(|r| r.err()));
    let csrf_fetch = csrf.clone();
    let csrf_read = csrf.clone();
    let csrf_upload = csrf.clone();
    // An uploaded file goes into the paste box and through the same server check as a paste.
    let read_file = move |xml: String| {
        pasted.set(xml.clone());
        from_file.set(true);
        read.dispatch(ReadSamlMetadata {
            csrf_token: csrf_upload.clone(),
            xml,
        });
    };
    let ip_warning = data.sp_host_is_ip.then(|| {
        view! {
            <p class="warning" role="alert">
                "The public URL is an IP address. Identity providers such as AWS IAM Identity Center expect a domain name in the ACS URL: set "
                <code>"web.public_url"</code> " to the gateway's DNS name."
            </p>
        }
    });

    view! {
        <section class="card" aria-labelledby="settings-saml">
            <h2 id="settings-saml">"SAML"</h2>
            <h3>"Jumpgate (service provider)"</h3>
            <p class="hint">"Copy these into the application you create at your identity provider."</p>
            {ip_warning}
            <dl class="sp-info">
                <dt>"Entity ID"</dt>
                <dd>
                    <input readonly data-testid="sp-entity-id" value=data.sp_entity_id.clone() />
                </dd>
                <dt>"ACS URL"</dt>
                <dd>
                    <input readonly data-testid="sp-acs-url" value=data.sp_acs_url.clone() />
                </dd>
                <dt>"Metadata"</dt>
                <dd>
                    <a href=data.sp_metadata_url.clone() rel="external" data-testid="sp-metadata-url">
                        {data.sp_metadata_url.clone()}
                    </a>
                </dd>
            </dl>

            <h3>"Identity provider"</h3>
            <div class="fetch-row">
                <label>
                    "Metadata URL"
                    <input
                        name="metadata_url_fetch"
                        type="url"
                        placeholder="https://portal.sso.example.com/saml/metadata/…"
                        prop:value=move || metadata_url.get()
                        on:input=move |ev| metadata_url.set(event_target_value(&ev))
                    />
                </label>
                <button
                    type="button"
                    class="secondary-dark"
                    disabled=move || fetch.pending().get()
                    on:click=move |_| {
                        fetch
                            .dispatch(FetchSamlMetadata {
                                csrf_token: csrf_fetch.clone(),
                                metadata_url: metadata_url.get_untracked(),
                            });
                    }
                >
                    {move || if fetch.pending().get() { "Fetching…" } else { "Fetch" }}
                </button>
            </div>
            <ErrorLine error=fetch_error />
            {data
                .metadata_refresh
                .clone()
                .map(|text| {
                    let failed = data.metadata_refresh_failed;
                    view! {
                        <p class:hint=!failed class:warning=failed data-testid="metadata-refresh">
                            {text}
                        </p>
                    }
                })}
            <details>
                <summary>"Or upload or paste the metadata XML"</summary>
                <label>
                    "Metadata file"
                    <input
                        type="file"
                        accept=".xml,application/samlmetadata+xml,application/xml,text/xml"
                        on:change=move |ev| {
                            upload_error.set(None);
                            load_text_file(ev, read_file.clone(), upload_error);
                        }
                    />
                </label>
                {move || {
                    upload_error
                        .get()
                        .map(|e| view! { <p class="error" role="alert">{e}</p> })
                }}
                <textarea
                    rows="5"
                    spellcheck="false"
                    aria-label="Metadata XML"
                    prop:value=move || pasted.get()
                    on:input=move |ev| pasted.set(event_target_value(&ev))
                ></textarea>
                <button
                    type="button"
                    class="secondary-dark"
                    on:click=move |_| {
                        from_file.set(false);
                        read.dispatch(ReadSamlMetadata {
                            csrf_token: csrf_read.clone(),
                            xml: pasted.get_untracked(),
                        });
                    }
                >
                    "Read metadata"
                </button>
                <ErrorLine error=read_error />
            </details>
            {move || filled.get().map(|text| view! { <p class="success" role="status">{text}</p> })}

            <ActionForm action=action attr:id="saml-form">
                <CsrfField token=csrf />
                <input type="hidden" name="saml[metadata_url]" prop:value=move || metadata_url.get() />
                <BoundInput label="IdP Entity ID" name="saml[idp_entity_id]" kind="text" value=entity_id />
                <BoundInput label="SSO URL" name="saml[idp_sso_url]" kind="url" value=sso_url />
                <label>
                    "SSO binding"
                    <select
                        name="saml[idp_sso_binding]"
                        prop:value=move || binding.get()
                        on:change=move |ev| binding.set(event_target_value(&ev))
                    >
                        <option value="redirect" selected=data.idp.sso_binding == "redirect">
                            "HTTP-Redirect"
                        </option>
                        <option value="post" selected=data.idp.sso_binding == "post">
                            "HTTP-POST"
                        </option>
                    </select>
                </label>
                <BoundInput label="SLO URL (optional)" name="saml[idp_slo_url]" kind="url" value=slo_url />
                <label>
                    "Signing certificates (PEM; several are trusted at once during a rollover)"
                    <textarea
                        name="saml[idp_certificates]"
                        rows="6"
                        spellcheck="false"
                        prop:value=move || certificates.get()
                        on:input=move |ev| certificates.set(event_target_value(&ev))
                    ></textarea>
                </label>
                {move || certificate_list(cert_info.get())}
                <h3>"Attribute mapping"</h3>
                <label>
                    "Email attribute"
                    <input name="saml[email_attribute]" value=data.email_attribute.clone() />
                </label>
                <p class="hint">
                    "When the assertion has no such attribute, a NameID in emailAddress format is used."
                </p>
                <label>
                    "Username attribute (optional)"
                    <input name="saml[username_attribute]" value=data.username_attribute.clone() />
                </label>
                <label>
                    "Display name attribute (optional)"
                    <input
                        name="saml[display_name_attribute]"
                        value=data.display_name_attribute.clone()
                    />
                </label>
                <label>
                    "Groups attribute (for the group mapping below)"
                    <input name="saml[groups_attribute]" value=data.groups_attribute.clone() />
                </label>
                <h3>"Sign-in rules"</h3>
                <label class="check">
                    <input
                        type="checkbox"
                        name="saml[allow_idp_initiated]"
                        value="on"
                        checked=data.allow_idp_initiated
                    />
                    "Accept sign-ins started at the identity provider (such as the AWS access portal)"
                </label>
                <label class="check">
                    <input
                        type="checkbox"
                        name="saml[sign_requests]"
                        value="on"
                        checked=data.sign_requests
                    />
                    "Sign authentication and logout requests (the certificate is in Jumpgate's metadata)"
                </label>
                <label>
                    "Allowed clock difference (seconds)"
                    <input
                        name="saml[clock_skew_seconds]"
                        type="number"
                        min="0"
                        max="600"
                        value=data.clock_skew_seconds.to_string()
                    />
                </label>
                <Outcome value=Signal::from(action.value()) />
                <button type="submit">"Save"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn GroupMappingSection(
    add: ServerAction<AddSamlGroupMapping>,
    remove: ServerAction<RemoveSamlGroupMapping>,
    csrf: String,
    data: SettingsView,
) -> impl IntoView {
    let add_error = Signal::derive(move || add.value().get().and_then(|r| r.err()));
    let remove_error = Signal::derive(move || remove.value().get().and_then(|r| r.err()));
    let rows = data
        .group_mappings
        .iter()
        .map(|m| {
            let csrf = csrf.clone();
            let id = m.id;
            view! {
                <tr data-mapping=m.idp_value.clone()>
                    <td>
                        <code>{m.idp_value.clone()}</code>
                    </td>
                    <td>{m.user_group.clone()}</td>
                    <td class="actions">
                        <ActionForm action=remove attr:class="inline">
                            <CsrfField token=csrf />
                            <input type="hidden" name="id" value=id.to_string() />
                            <button type="submit" class="small danger">
                                "Remove"
                            </button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let options = data
        .user_groups
        .iter()
        .map(|g| view! { <option value=g.clone()>{g.clone()}</option> })
        .collect_view();
    let add_form = if data.user_groups.is_empty() {
        view! { <p class="hint">"Create a user group under Access first."</p> }.into_any()
    } else {
        view! {
            <ActionForm action=add attr:id="group-mapping-form">
                <CsrfField token=csrf />
                <div class="grid">
                    <label>
                        "IdP group value"
                        <input name="idp_value" type="text" required />
                    </label>
                    <label>
                        "User group"
                        <select name="user_group">{options}</select>
                    </label>
                </div>
                <ErrorLine error=add_error />
                <button type="submit">"Add mapping"</button>
            </ActionForm>
        }
        .into_any()
    };
    view! {
        <section class="card" aria-labelledby="settings-group-mapping">
            <h2 id="settings-group-mapping">"SAML group mapping"</h2>
            <p class="hint">
                "At each SAML sign-in, membership of every user group named here follows the values of the groups attribute (AWS IAM Identity Center sends group IDs, not names). User groups not named here are left as they are."
            </p>
            <table class="list">
                <thead>
                    <tr>
                        <th>"IdP group value"</th>
                        <th>"Jumpgate user group"</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
            <ErrorLine error=remove_error />
            {add_form}
        </section>
    }
}

#[component]
fn TestSection(data: SettingsView) -> impl IntoView {
    let href = format!("{}?test=1", crate::paths::SAML_LOGIN);
    let result = data.last_test.map(|t| {
        let attributes = t
            .attributes
            .iter()
            .map(|(name, values)| {
                view! {
                    <tr>
                        <td>
                            <code>{name.clone()}</code>
                        </td>
                        <td>{values.join(", ")}</td>
                    </tr>
                }
            })
            .collect_view();
        let verdict = if t.ok {
            "Accepted: every check passed.".to_string()
        } else {
            format!("Refused: {}.", t.reason.clone().unwrap_or_default())
        };
        view! {
            <div data-testid="saml-test-result">
                <p class:success=t.ok class:error=!t.ok>
                    {format!("Test on {}. {verdict}", t.at)}
                </p>
                {t
                    .email
                    .clone()
                    .map(|email| {
                        view! {
                            <dl class="facts">
                                <dt>"Email"</dt>
                                <dd>{email}</dd>
                                <dt>"NameID"</dt>
                                <dd>{t.name_id.clone().unwrap_or_default()}</dd>
                                <dt>"Account"</dt>
                                <dd>{t.account.clone().unwrap_or_default()}</dd>
                                <dt>"Groups"</dt>
                                <dd>{t.groups.join(", ")}</dd>
                            </dl>
                        }
                    })}
                <table class="list">
                    <thead>
                        <tr>
                            <th>"Attribute"</th>
                            <th>"Values"</th>
                        </tr>
                    </thead>
                    <tbody>{attributes}</tbody>
                </table>
            </div>
        }
    });
    view! {
        <section class="card" id="saml-test" aria-labelledby="settings-saml-test">
            <h2 id="settings-saml-test">"Test the SAML connection"</h2>
            <p class="hint">
                "Signs you in at the identity provider and shows here what it sent, without signing anyone in to Jumpgate. Save the settings first."
            </p>
            <a class="button" href=href rel="external">
                "Test sign-in with the identity provider"
            </a>
            {result}
        </section>
    }
}
