//! Checking a SAML response posted to the assertion consumer service.
//!
//! samael and libxmlsec do the XML signature work; this module decides what is accepted
//! around them and fails closed where samael would not:
//! - no trusted certificate means no sign-in (samael skips the signature check when its IdP
//!   metadata has no certificate);
//! - DTDs and entity declarations are refused before any XML parser sees the document;
//! - the signed data is read in samael's pre-digest mode: what is parsed is exactly the
//!   canonical form that was hashed, so nothing unsigned (a wrapped copy, a comment that
//!   splits a value) can reach the fields used;
//! - a document with more than one Response or Assertion element (however nested) is refused
//!   before verification: web sign-on needs exactly one, and extra copies are the raw material
//!   of signature-wrapping attacks;
//! - only modern signature algorithms are allowed;
//! - an unsolicited (IdP-initiated) response must not claim to answer a request.
//!
//! Replay protection and request bookkeeping need the database and live in `saml::web`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration;
use samael::crypto::{AllowedSignatureAlgorithm, ReduceMode};
use samael::key_info::{KeyInfo, X509Data};
use samael::metadata::{EntityDescriptor, IdpSsoDescriptor, KeyDescriptor};
use samael::schema::Assertion;
use samael::service_provider::{Error as SamlLibError, ServiceProviderBuilder};

use super::metadata::refuse_doctype;
use super::{IdpConfig, SpUrls};

/// Largest `SAMLResponse` field accepted (base64). Real responses are a few kilobytes.
pub const MAX_RESPONSE_B64: usize = 256 * 1024;
/// How old a response's IssueInstant may be, beyond the configured clock skew.
const MAX_ISSUE_DELAY_SECONDS: i64 = 180;

/// The XML signature algorithms accepted from the IdP: SHA-1 and weaker are refused.
pub const XML_SIGNATURE_ALGORITHMS: [AllowedSignatureAlgorithm; 6] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// Why a response was refused. The reason goes to the log; the person sees a plain page.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("SAML sign-in is not configured (no identity provider entity ID or certificate)")]
    NotConfigured,
    #[error("the response is larger than {MAX_RESPONSE_B64} bytes")]
    TooLarge,
    #[error("the response is not valid base64 or not UTF-8 XML")]
    NotDecodable,
    #[error("the response contains a DTD or entity declaration")]
    Doctype,
    #[error("the signature does not verify against a trusted IdP certificate, or is missing")]
    Signature,
    #[error("{0}")]
    UnsafeSignature(super::xmldsig::Unsafe),
    #[error(
        "the response must hold exactly one Response and one Assertion; it has {responses} and \
         {assertions} (signature wrapping?)"
    )]
    Structure { responses: usize, assertions: usize },
    #[error("the response is malformed: {0}")]
    Malformed(String),
    #[error("the Issuer is not the configured identity provider")]
    Issuer,
    #[error("the response is not addressed to this ACS URL (Destination)")]
    Destination,
    #[error("the assertion is for another recipient (SubjectConfirmationData Recipient)")]
    Recipient,
    #[error("the assertion is for another service provider (Audience)")]
    Audience,
    #[error("the assertion has expired")]
    Expired,
    #[error("the assertion is not valid yet")]
    NotYetValid,
    #[error("the response does not answer a sign-in request of ours (InResponseTo)")]
    InResponseTo,
    #[error("the identity provider reported a failure status: {0}")]
    Status(String),
    #[error("the assertion has no bearer subject confirmation")]
    NoBearer,
    #[error("the assertion carries no email (attribute `{0}` or an emailAddress NameID)")]
    NoEmail(String),
    #[error("the response is encrypted; Jumpgate expects signed, unencrypted assertions")]
    Encrypted,
    #[error("this assertion was already used (replay)")]
    Replay,
    #[error("sign-ins started at the identity provider are turned off")]
    IdpInitiatedOff,
    #[error("the sign-in request is unknown, expired or already answered")]
    UnknownRequest,
    #[error(
        "the answer reached a browser other than the one that started the sign-in, or one that \
         blocks Jumpgate's cookies"
    )]
    OtherBrowser,
}

/// What a verified assertion says about the person.
#[derive(Debug, Clone)]
pub struct Verified {
    pub assertion_id: String,
    pub email: String,
    pub name_id: Option<String>,
    pub name_id_format: Option<String>,
    /// The IdP's session, which its logout requests may name.
    pub session_index: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// Every value of the groups attribute.
    pub groups: Vec<String>,
    /// Every attribute by name (and friendly name), for the test-connection view.
    pub attributes: Vec<(String, Vec<String>)>,
    /// Unix seconds after which the assertion is no longer valid (for the replay cache).
    pub valid_until: i64,
}

/// Which request, if any, the response must answer.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// SP-initiated: it must answer this request ID.
    Request(&'a str),
    /// IdP-initiated: it must answer none.
    Unsolicited,
}

/// Decodes and verifies a posted `SAMLResponse`. CPU-bound and behind libxmlsec's global lock:
/// call it from a blocking thread.
pub fn verify(
    saml_response_b64: &str,
    idp: &IdpConfig,
    sp: &SpUrls,
    expect: Expect<'_>,
) -> Result<Verified, Refusal> {
    if saml_response_b64.len() > MAX_RESPONSE_B64 {
        return Err(Refusal::TooLarge);
    }
    let bytes = super::decode_base64(saml_response_b64).ok_or(Refusal::NotDecodable)?;
    let xml = String::from_utf8(bytes).map_err(|_| Refusal::NotDecodable)?;
    verify_xml(&xml, idp, sp, expect)
}

pub fn verify_xml(
    xml: &str,
    idp: &IdpConfig,
    sp: &SpUrls,
    expect: Expect<'_>,
) -> Result<Verified, Refusal> {
    if refuse_doctype(xml) {
        return Err(Refusal::Doctype);
    }
    one_response_one_assertion(xml)?;
    super::xmldsig::check(xml).map_err(Refusal::UnsafeSignature)?;
    if idp.entity_id.is_empty() {
        return Err(Refusal::NotConfigured);
    }
    let ders = super::certs::der_all(&idp.certificates_pem).map_err(|_| Refusal::NotConfigured)?;
    if ders.is_empty() {
        return Err(Refusal::NotConfigured);
    }
    let key_descriptors = ders
        .iter()
        .map(|der| KeyDescriptor {
            key_use: Some("signing".into()),
            key_info: KeyInfo {
                id: None,
                x509_data: Some(X509Data {
                    certificates: vec![STANDARD.encode(der)],
                }),
            },
            encryption_methods: None,
        })
        .collect();
    let idp_metadata = EntityDescriptor {
        entity_id: Some(idp.entity_id.clone()),
        idp_sso_descriptors: Some(vec![IdpSsoDescriptor {
            id: None,
            valid_until: None,
            cache_duration: None,
            protocol_support_enumeration: None,
            error_url: None,
            signature: None,
            key_descriptors,
            organization: None,
            contact_people: Vec::new(),
            artifact_resolution_service: Vec::new(),
            single_logout_services: Vec::new(),
            manage_name_id_services: Vec::new(),
            name_id_formats: Vec::new(),
            want_authn_requests_signed: None,
            single_sign_on_services: Vec::new(),
            name_id_mapping_services: Vec::new(),
            assertion_id_request_services: Vec::new(),
            attribute_profiles: Vec::new(),
            attributes: Vec::new(),
        }]),
        ..EntityDescriptor::default()
    };
    let skew = Duration::seconds(idp.clock_skew_seconds);
    let sp_lib = ServiceProviderBuilder::default()
        .entity_id(sp.entity_id.clone())
        .acs_url(sp.acs.clone())
        .metadata_url(sp.metadata.clone())
        .idp_metadata(idp_metadata)
        .allow_idp_initiated(matches!(expect, Expect::Unsolicited))
        .max_clock_skew(skew)
        .max_issue_delay(Duration::seconds(MAX_ISSUE_DELAY_SECONDS) + skew)
        .allowed_signature_algorithms(Some(XML_SIGNATURE_ALGORITHMS.to_vec()))
        .build()
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    // Belt and braces: the library must see the certificates, or it would not check at all.
    if !matches!(sp_lib.idp_signing_certs(), Ok(Some(ref c)) if c.len() == ders.len()) {
        return Err(Refusal::NotConfigured);
    }

    let ids;
    let possible = match expect {
        Expect::Request(id) => {
            ids = [id];
            Some(&ids[..])
        }
        Expect::Unsolicited => None,
    };
    let assertion = sp_lib
        .parse_xml_response_with_mode(xml, possible, ReduceMode::PreDigest)
        .map_err(map_library_error)?;

    if matches!(expect, Expect::Unsolicited) && answers_a_request(&assertion) {
        return Err(Refusal::InResponseTo);
    }
    extract(assertion, idp)
}

/// Counts Response and Assertion elements (plain or encrypted) anywhere in the document, by
/// local name, and refuses anything but one of each. Unparseable XML is refused too.
fn one_response_one_assertion(xml: &str) -> Result<(), Refusal> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut responses, mut assertions) = (0usize, 0usize);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                b"Response" => responses += 1,
                b"Assertion" | b"EncryptedAssertion" => assertions += 1,
                _ => {}
            },
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(Refusal::Malformed(format!("not well-formed XML ({e})"))),
        }
    }
    if responses == 1 && assertions == 1 {
        Ok(())
    } else {
        Err(Refusal::Structure {
            responses,
            assertions,
        })
    }
}

fn answers_a_request(assertion: &Assertion) -> bool {
    assertion
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
        .filter_map(|c| c.subject_confirmation_data.as_ref())
        .any(|d| d.in_response_to.as_deref().is_some_and(|v| !v.is_empty()))
}

fn map_library_error(e: SamlLibError) -> Refusal {
    use SamlLibError as E;
    match e {
        E::FailedToValidateSignature | E::CryptoXmlError(_) | E::CryptoProviderError(_) => {
            Refusal::Signature
        }
        E::DestinationValidationError { .. } => Refusal::Destination,
        E::AssertionExpired { .. }
        | E::AssertionSubjectConfirmationExpired { .. }
        | E::AssertionConditionExpired { .. }
        | E::ResponseExpired { .. } => Refusal::Expired,
        E::AssertionSubjectConfirmationExpiredBefore { .. }
        | E::AssertionConditionExpiredBefore { .. } => Refusal::NotYetValid,
        E::AssertionIssuerMismatch { .. } | E::ResponseIssuerMismatch { .. } => Refusal::Issuer,
        E::AssertionConditionAudienceRestrictionFailed { .. } => Refusal::Audience,
        E::AssertionRecipientMismatch { .. } => Refusal::Recipient,
        E::AssertionInResponseToInvalid { .. } | E::ResponseInResponseToInvalid { .. } => {
            Refusal::InResponseTo
        }
        E::ResponseBadStatusCode { code } => Refusal::Status(code),
        E::AssertionBearerSubjectConfirmationMissing | E::AssertionSubjectConfirmationMissing => {
            Refusal::NoBearer
        }
        E::EncryptedAssertionsNotYetSupported
        | E::MissingPrivateKeySP
        | E::MissingEncryptedKeyInfo
        | E::MissingEncryptedValueInfo
        | E::EncryptedAssertionKeyMethodUnsupported { .. }
        | E::EncryptedAssertionValueMethodUnsupported { .. }
        | E::EncryptedAssertionInvalid
        | E::FailedToDecryptAssertion => Refusal::Encrypted,
        other => Refusal::Malformed(other.to_string()),
    }
}

/// Reads the person's details from a verified assertion.
fn extract(assertion: Assertion, idp: &IdpConfig) -> Result<Verified, Refusal> {
    let mut attributes: Vec<(String, Vec<String>)> = Vec::new();
    for statement in assertion.attribute_statements.iter().flatten() {
        for attr in &statement.attributes {
            let values: Vec<String> = attr
                .values
                .iter()
                .filter_map(|v| v.value.clone())
                .map(|v| v.trim().to_string())
                .collect();
            for name in [&attr.name, &attr.friendly_name].into_iter().flatten() {
                attributes.push((name.clone(), values.clone()));
            }
        }
    }
    let first = |wanted: &str| -> Option<String> {
        if wanted.is_empty() {
            return None;
        }
        attributes
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .flat_map(|(_, v)| v.iter())
            .find(|v| !v.is_empty())
            .cloned()
    };
    let name_id = assertion
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .map(|n| (n.value.trim().to_string(), n.format.clone()));
    let email = first(&idp.email_attribute)
        .or_else(|| {
            name_id
                .as_ref()
                .filter(|(_, format)| format.as_deref() == Some(EMAIL_FORMAT))
                .map(|(v, _)| v.clone())
        })
        .filter(|e| plausible_email(e))
        .ok_or_else(|| Refusal::NoEmail(idp.email_attribute.clone()))?;

    let mut valid_until = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.not_on_or_after)
        .map(|t| t.timestamp());
    for data in assertion
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
        .filter_map(|c| c.subject_confirmation_data.as_ref())
    {
        if let Some(t) = data.not_on_or_after {
            valid_until = Some(valid_until.map_or(t.timestamp(), |v| v.max(t.timestamp())));
        }
    }
    let valid_until = valid_until
        .unwrap_or_else(|| assertion.issue_instant.timestamp() + MAX_ISSUE_DELAY_SECONDS)
        + idp.clock_skew_seconds;

    let groups = if idp.groups_attribute.is_empty() {
        Vec::new()
    } else {
        attributes
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(&idp.groups_attribute))
            .flat_map(|(_, v)| v.iter())
            .filter(|v| !v.is_empty())
            .cloned()
            .collect()
    };
    let session_index = assertion
        .authn_statements
        .iter()
        .flatten()
        .find_map(|a| a.session_index.clone());
    let (name_id, name_id_format) = match name_id {
        Some((value, format)) => (Some(value), format),
        None => (None, None),
    };
    Ok(Verified {
        assertion_id: assertion.id.clone(),
        groups,
        username: first(&idp.username_attribute),
        display_name: first(&idp.display_name_attribute),
        name_id,
        name_id_format,
        session_index,
        email,
        attributes,
        valid_until,
    })
}

/// An address shape good enough to match accounts: one `@`, something on each side, no
/// spaces or control characters.
pub fn plausible_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}
