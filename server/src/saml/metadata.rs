//! Metadata both ways: reading the identity provider's (from a URL or pasted XML) and writing
//! Jumpgate's own service-provider metadata.

use std::time::Duration;

use samael::metadata::{
    EntitiesDescriptor, EntityDescriptor, EntityDescriptorType, HTTP_POST_BINDING,
    HTTP_REDIRECT_BINDING, IndexedEndpoint, NameIdFormat, SpSsoDescriptor,
};
use samael::traits::ToXml;

use super::SpUrls;
use super::certs::{self, CertSummary};

/// Largest metadata document accepted. Real IdP metadata is a few kilobytes; federation
/// aggregates with thousands of entities are not what this field is for.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_REDIRECTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("the metadata URL is not an http:// or https:// URL")]
    BadUrl,
    #[error("could not download the metadata: {0}")]
    Download(String),
    #[error("the identity provider answered HTTP {0}; check the metadata URL")]
    HttpStatus(u16),
    #[error("the metadata is larger than {} KiB", MAX_METADATA_BYTES / 1024)]
    TooLarge,
    #[error("the metadata is not UTF-8 text")]
    NotText,
    #[error("the metadata contains a DTD or entity declaration, which is refused")]
    Doctype,
    #[error("the metadata is not SAML metadata: {0}")]
    NotMetadata(String),
    #[error("the metadata describes no identity provider (no IDPSSODescriptor)")]
    NoIdp,
    #[error("the identity provider has no entity ID in its metadata")]
    NoEntityId,
    #[error("the identity provider offers no single sign-on URL with the Redirect or POST binding")]
    NoSsoUrl,
    #[error(
        "the metadata carries no signing certificate. Jumpgate accepts only signed responses, so \
         add the identity provider's certificate by hand or fix its metadata"
    )]
    NoSigningCertificate,
    #[error("a certificate in the metadata is unreadable: {0}")]
    BadCertificate(String),
}

/// Which binding sign-in requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoBinding {
    Redirect,
    Post,
}

impl SsoBinding {
    pub fn as_str(self) -> &'static str {
        match self {
            SsoBinding::Redirect => "redirect",
            SsoBinding::Post => "post",
        }
    }
}

/// What Jumpgate takes from an identity provider's metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    pub sso_binding: SsoBinding,
    pub slo_url: Option<String>,
    /// Canonical PEM bundle of every signing certificate.
    pub certificates_pem: String,
    pub certificates: Vec<CertSummary>,
}

/// Refuses documents that declare a DTD: entity expansion is the classic way to exhaust
/// memory or read local files through an XML parser, and SAML never needs one.
pub fn refuse_doctype(xml: &str) -> bool {
    let lower = xml.to_ascii_lowercase();
    lower.contains("<!doctype") || lower.contains("<!entity")
}

/// Reads identity-provider metadata: an `EntityDescriptor`, or an `EntitiesDescriptor` with
/// exactly one identity provider in it.
pub fn parse_idp(xml: &str) -> Result<IdpMetadata, MetadataError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge);
    }
    if refuse_doctype(xml) {
        return Err(MetadataError::Doctype);
    }
    // The root element decides how to read the document: samael's parsers are lenient and
    // would read an HTML login page as an empty EntityDescriptor.
    let entity = match root_element(xml).as_deref() {
        Some("EntityDescriptor") => {
            let e = xml
                .parse::<EntityDescriptor>()
                .map_err(|e| MetadataError::NotMetadata(e.to_string()))?;
            if e.idp_sso_descriptors.is_none() {
                return Err(MetadataError::NoIdp);
            }
            e
        }
        Some("EntitiesDescriptor") => {
            let all = xml
                .parse::<EntitiesDescriptor>()
                .map_err(|e| MetadataError::NotMetadata(e.to_string()))?;
            let mut idps = Vec::new();
            collect_idps(all.descriptors, &mut idps);
            match idps.len() {
                0 => return Err(MetadataError::NoIdp),
                1 => idps.remove(0),
                n => {
                    return Err(MetadataError::NotMetadata(format!(
                        "it lists {n} identity providers; use the metadata URL of one"
                    )));
                }
            }
        }
        Some(other) => {
            return Err(MetadataError::NotMetadata(format!(
                "its root element is <{other}>, not <EntityDescriptor>"
            )));
        }
        None => return Err(MetadataError::NotMetadata("it is not XML".into())),
    };
    let entity_id = entity
        .entity_id
        .clone()
        .filter(|e| !e.trim().is_empty())
        .ok_or(MetadataError::NoEntityId)?;
    let descriptors = entity.idp_sso_descriptors.unwrap_or_default();
    let find_sso = |binding: &str| {
        descriptors
            .iter()
            .flat_map(|d| d.single_sign_on_services.iter())
            .find(|s| s.binding == binding)
            .map(|s| s.location.clone())
    };
    let (sso_url, sso_binding) =
        match (find_sso(HTTP_REDIRECT_BINDING), find_sso(HTTP_POST_BINDING)) {
            (Some(url), _) => (url, SsoBinding::Redirect),
            (None, Some(url)) => (url, SsoBinding::Post),
            (None, None) => return Err(MetadataError::NoSsoUrl),
        };
    // Our logout messages go by HTTP-Redirect: its endpoint is preferred. Known shortcoming:
    // an IdP that offers only a POST endpoint still gets our messages by Redirect there.
    let find_slo = |binding: &str| {
        descriptors
            .iter()
            .flat_map(|d| d.single_logout_services.iter())
            .find(|s| s.binding == binding)
            .map(|s| s.location.clone())
    };
    let slo_url = find_slo(HTTP_REDIRECT_BINDING).or_else(|| find_slo(HTTP_POST_BINDING));

    // Keys marked for signing, or with no use given (which means both uses).
    let mut blocks = Vec::new();
    for key in descriptors.iter().flat_map(|d| d.key_descriptors.iter()) {
        if matches!(key.key_use.as_deref(), Some("encryption")) {
            continue;
        }
        for b64 in key
            .key_info
            .x509_data
            .iter()
            .flat_map(|x| x.certificates.iter())
        {
            let cert = certs::from_base64(b64).map_err(MetadataError::BadCertificate)?;
            let pem = cert
                .to_pem()
                .map_err(|_| MetadataError::BadCertificate("unwritable".into()))?;
            let pem = String::from_utf8_lossy(&pem).into_owned();
            if !blocks.contains(&pem) {
                blocks.push(pem);
            }
        }
    }
    if blocks.is_empty() {
        return Err(MetadataError::NoSigningCertificate);
    }
    let certificates_pem = blocks.concat();
    let certificates =
        certs::summarise(&certificates_pem).map_err(MetadataError::BadCertificate)?;
    Ok(IdpMetadata {
        entity_id,
        sso_url,
        sso_binding,
        slo_url,
        certificates_pem,
        certificates,
    })
}

/// The local name of the document's first element, if it is well-formed up to there.
fn root_element(xml: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => {
                return Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

fn collect_idps(list: Vec<EntityDescriptorType>, out: &mut Vec<EntityDescriptor>) {
    for d in list {
        match d {
            EntityDescriptorType::EntityDescriptor(e) if e.idp_sso_descriptors.is_some() => {
                out.push(e)
            }
            EntityDescriptorType::EntityDescriptor(_) => {}
            EntityDescriptorType::EntitiesDescriptor(inner) => collect_idps(inner.descriptors, out),
        }
    }
}

/// Downloads metadata: TLS verified against the system's roots, at most a few redirects, a
/// time limit and a size limit, so a wrong or hostile URL cannot hang or flood the server.
pub async fn fetch(url: &str) -> Result<String, MetadataError> {
    let parsed = url::Url::parse(url.trim()).map_err(|_| MetadataError::BadUrl)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(MetadataError::BadUrl);
    }
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("Jumpgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| MetadataError::Download(e.to_string()))?;
    let mut resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| MetadataError::Download(describe(&e)))?;
    if !resp.status().is_success() {
        return Err(MetadataError::HttpStatus(resp.status().as_u16()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_METADATA_BYTES as u64)
    {
        return Err(MetadataError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| MetadataError::Download(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| MetadataError::NotText)
}

/// reqwest's error with its causes, which name the actual problem (certificate, DNS, refused).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Jumpgate's service-provider metadata: entity ID, the POST assertion consumer service, the
/// NameID formats it understands and, when it has one, its signing certificate. Responses must
/// be signed; requests are signed when `signs_requests`.
pub fn sp_xml(sp: &SpUrls, signs_requests: bool) -> Result<String, String> {
    use base64::Engine;
    let key_descriptors = sp.signing.as_ref().map(|key| {
        vec![samael::metadata::KeyDescriptor {
            key_use: Some("signing".into()),
            key_info: samael::key_info::KeyInfo {
                id: None,
                x509_data: Some(samael::key_info::X509Data {
                    certificates: vec![
                        base64::engine::general_purpose::STANDARD.encode(&key.cert_der),
                    ],
                }),
            },
            encryption_methods: None,
        }]
    });
    let descriptor = SpSsoDescriptor {
        protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".into()),
        key_descriptors,
        name_id_formats: Some(vec![
            NameIdFormat::EmailAddressNameIDFormat.value().to_string(),
            NameIdFormat::UnspecifiedNameIDFormat.value().to_string(),
            NameIdFormat::PersistentNameIDFormat.value().to_string(),
        ]),
        authn_requests_signed: Some(signs_requests && sp.signing.is_some()),
        want_assertions_signed: Some(true),
        single_logout_services: Some(
            [samael::metadata::HTTP_REDIRECT_BINDING, HTTP_POST_BINDING]
                .into_iter()
                .map(|binding| samael::metadata::Endpoint {
                    binding: binding.to_string(),
                    location: sp.slo.clone(),
                    response_location: None,
                })
                .collect(),
        ),
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: HTTP_POST_BINDING.to_string(),
            location: sp.acs.clone(),
            index: 0,
            is_default: Some(true),
            ..IndexedEndpoint::default()
        }],
        ..SpSsoDescriptor::default()
    };
    let entity = EntityDescriptor {
        entity_id: Some(sp.entity_id.clone()),
        sp_sso_descriptors: Some(vec![descriptor]),
        ..EntityDescriptor::default()
    };
    entity.to_string().map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    fn cert_b64(cn: &str) -> String {
        let cert = crate::saml::certs::tests::self_signed(cn, 365);
        STANDARD.encode(cert.to_der().unwrap())
    }

    fn key(usage: Option<&str>, cn: &str) -> String {
        let attr = usage.map(|u| format!(" use=\"{u}\"")).unwrap_or_default();
        format!(
            "<md:KeyDescriptor{attr}><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">\
             <ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\
             </md:KeyDescriptor>",
            cert_b64(cn)
        )
    }

    fn idp(entity: &str, keys: &str, services: &str) -> String {
        format!(
            "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"{entity}\">\
             <md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\
             {keys}{services}</md:IDPSSODescriptor></md:EntityDescriptor>"
        )
    }

    fn sso(binding: &str, url: &str) -> String {
        format!(
            "<md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:{binding}\" \
             Location=\"{url}\"/>"
        )
    }

    #[test]
    fn redirect_is_preferred_and_signing_keys_are_kept() {
        let services = format!(
            "{}{}",
            sso("HTTP-POST", "https://idp.test/post"),
            sso("HTTP-Redirect", "https://idp.test/redirect")
        );
        let keys = format!(
            "{}{}{}",
            key(Some("signing"), "current"),
            key(None, "next"),
            key(Some("encryption"), "enc")
        );
        let md = parse_idp(&idp("https://idp.test/md", &keys, &services)).unwrap();
        assert_eq!(md.entity_id, "https://idp.test/md");
        assert_eq!(md.sso_url, "https://idp.test/redirect");
        assert_eq!(md.sso_binding, SsoBinding::Redirect);
        // Both signing keys are trusted at once (a rollover); the encryption key is not.
        let subjects: Vec<_> = md.certificates.iter().map(|c| c.subject.as_str()).collect();
        assert_eq!(subjects, ["CN=current", "CN=next"]);
    }

    #[test]
    fn post_only_and_wrapped_in_entities_descriptor() {
        let one = idp(
            "https://idp.test/md",
            &key(Some("signing"), "k"),
            &sso("HTTP-POST", "https://idp.test/post"),
        );
        let wrapped = format!(
            "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\">{}</md:EntitiesDescriptor>",
            one.replace(" xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\"", "")
        );
        let md = parse_idp(&wrapped).unwrap();
        assert_eq!(md.sso_binding, SsoBinding::Post);
        assert_eq!(md.sso_url, "https://idp.test/post");
    }

    #[test]
    fn metadata_without_what_sign_in_needs_is_refused() {
        let services = sso("HTTP-Redirect", "https://idp.test/redirect");
        assert!(matches!(
            parse_idp(&idp("https://idp.test/md", "", &services)),
            Err(MetadataError::NoSigningCertificate)
        ));
        assert!(matches!(
            parse_idp(&idp(
                "https://idp.test/md",
                &key(Some("encryption"), "enc"),
                &services
            )),
            Err(MetadataError::NoSigningCertificate)
        ));
        assert!(matches!(
            parse_idp(&idp("https://idp.test/md", &key(None, "k"), "")),
            Err(MetadataError::NoSsoUrl)
        ));
        let doctype = format!(
            "<!DOCTYPE x [<!ENTITY e \"e\">]>{}",
            idp("https://idp.test/md", &key(None, "k"), &services)
        );
        assert!(matches!(parse_idp(&doctype), Err(MetadataError::Doctype)));
        assert!(matches!(
            parse_idp("<html><body>login</body></html>"),
            Err(MetadataError::NotMetadata(_))
        ));
    }
}
