//! Single logout (SAML 2.0 SLO), both ways: the IdP's messages by HTTP-Redirect or HTTP-POST,
//! ours by HTTP-Redirect.
//!
//! - Ours: signing out of a panel session that came through SAML sends the browser to the
//!   IdP's single logout URL with a LogoutRequest naming the subject (and IdP session) that the
//!   assertion named. The panel session has already ended by then, whatever the IdP answers;
//!   its LogoutResponse at `/saml/slo` only decides what the "Signed out" page says.
//! - The IdP's: a LogoutRequest at `/saml/slo` must carry a Redirect-binding signature that
//!   verifies against a configured IdP certificate, the IdP's Issuer, our SLO URL as Destination
//!   (when it names one), a recent IssueInstant and an ID never seen before. It ends every
//!   panel session of that subject, and with them the SSH connections that relied on them.
//!
//! The Redirect-binding signature covers the query parameters exactly as they were sent
//! (`SAMLRequest=…&RelayState=…&SigAlg=…`), so it is checked over the raw query here with
//! OpenSSL. samael's `UrlVerifier` re-encodes the decoded values first (which need not give the
//! sender's bytes back) and panics on a missing `SigAlg` or `Signature`, which a hostile query
//! must not be able to cause.
//!
//! samael writes `SessionIndex` before `NameID` in a LogoutRequest, against the schema's order,
//! so ours is written here; it holds only text we escape.

use std::collections::HashMap;
use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};

use super::{IdpConfig, SpUrls};
use crate::notice::escape;
use crate::storage::SamlSubject;

/// How long our logout request waits for its answer.
pub const REQUEST_LIFETIME_SECONDS: i64 = 10 * 60;
/// How old the IdP's logout request may be (plus the clock skew).
const MAX_AGE_SECONDS: i64 = 5 * 60;
const MAX_QUERY_BYTES: usize = 64 * 1024;
const MAX_XML_BYTES: usize = 128 * 1024;

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
const ECDSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512";

/// Why a single-logout message was refused. Logged with a reference the person sees.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SloRefusal {
    #[error("single logout is off or the identity provider has no logout URL")]
    NotConfigured,
    #[error("the query or RelayState is too large, or a parameter is named twice")]
    BadQuery,
    #[error("no SAMLRequest or SAMLResponse in the query")]
    NoMessage,
    #[error("the message is not base64-encoded DEFLATE data")]
    NotDecodable,
    #[error("the message is larger than {MAX_XML_BYTES} bytes")]
    TooLarge,
    #[error("the message declares a DTD or entities")]
    Doctype,
    #[error("the message is not a well-formed {0}")]
    Malformed(&'static str),
    #[error("the message is not signed (no SigAlg and Signature, or no XML signature when posted)")]
    Unsigned,
    #[error(
        "signature algorithm {0} is not accepted (RSA or ECDSA with SHA-256, -384 or -512 only)"
    )]
    Algorithm(String),
    #[error("the signature does not verify against any configured IdP certificate")]
    Signature,
    #[error("{0}")]
    UnsafeSignature(super::xmldsig::Unsafe),
    #[error("the issuer {0:?} is not the configured identity provider")]
    Issuer(String),
    #[error("the destination {0:?} is not this service provider's logout URL")]
    Destination(String),
    #[error("the message was issued outside the accepted time window")]
    Stale,
    #[error("the logout request names no subject")]
    NoNameId,
    #[error("the logout request was seen before (a replay)")]
    Replay,
}

/// A logout order from the IdP that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutOrder {
    pub id: String,
    pub name_id: String,
    pub session_index: Option<String>,
    /// To be echoed back with the answer.
    pub relay_state: Option<String>,
}

/// The IdP's answer to our logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutAnswer {
    pub in_response_to: String,
    pub success: bool,
    /// Whether it carried a signature (which then verified).
    pub signed: bool,
}

/// One query parameter: as sent (percent-encoded) and decoded.
struct Param<'a> {
    raw: &'a str,
    decoded: String,
}

/// The query's parameters. A parameter given twice is refused: which copy was signed and
/// which is read must never differ.
fn params(query: &str) -> Result<HashMap<String, Param<'_>>, SloRefusal> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(SloRefusal::BadQuery);
    }
    let mut found = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| -> String {
            form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let key = decode(raw_key);
        let param = Param {
            raw,
            decoded: decode(raw),
        };
        if found.insert(key, param).is_some() {
            return Err(SloRefusal::BadQuery);
        }
    }
    Ok(found)
}

/// Checks the Redirect-binding signature over `message_key`, `RelayState` (when sent) and
/// `SigAlg`, as sent, against every configured certificate of the algorithm's kind.
fn verify_signature(
    params: &HashMap<String, Param<'_>>,
    message_key: &str,
    certificates_pem: &str,
) -> Result<(), SloRefusal> {
    let (Some(message), Some(sig_alg), Some(signature)) = (
        params.get(message_key),
        params.get("SigAlg"),
        params.get("Signature"),
    ) else {
        return Err(SloRefusal::Unsigned);
    };
    let (digest, ecdsa) = match sig_alg.decoded.as_str() {
        RSA_SHA256 => (MessageDigest::sha256(), false),
        RSA_SHA384 => (MessageDigest::sha384(), false),
        RSA_SHA512 => (MessageDigest::sha512(), false),
        ECDSA_SHA256 => (MessageDigest::sha256(), true),
        ECDSA_SHA384 => (MessageDigest::sha384(), true),
        ECDSA_SHA512 => (MessageDigest::sha512(), true),
        other => return Err(SloRefusal::Algorithm(other.chars().take(100).collect())),
    };
    let signature = super::decode_base64(&signature.decoded).ok_or(SloRefusal::Signature)?;
    let mut signed = format!("{message_key}={}", message.raw);
    if let Some(relay) = params.get("RelayState") {
        signed.push_str("&RelayState=");
        signed.push_str(relay.raw);
    }
    signed.push_str("&SigAlg=");
    signed.push_str(sig_alg.raw);

    let ders = super::certs::der_all(certificates_pem).map_err(|_| SloRefusal::NotConfigured)?;
    if ders.is_empty() {
        return Err(SloRefusal::NotConfigured);
    }
    for der in ders {
        let Ok(key) = openssl::x509::X509::from_der(&der).and_then(|c| c.public_key()) else {
            continue;
        };
        // The algorithm names the key kind: an RSA name never verifies with an EC key.
        let forms = match (ecdsa, key.rsa().is_ok(), key.ec_key()) {
            (false, true, _) => vec![signature.clone()],
            (true, false, Ok(ec)) => ecdsa_forms(&ec, &signature),
            _ => continue,
        };
        for form in forms {
            let verified = openssl::sign::Verifier::new(digest, &key)
                .and_then(|mut v| {
                    v.update(signed.as_bytes())?;
                    v.verify(&form)
                })
                .unwrap_or(false);
            if verified {
                return Ok(());
            }
        }
    }
    Err(SloRefusal::Signature)
}

/// The ways an ECDSA signature value may arrive: DER (as OpenSSL and Java write it) and the
/// fixed-size r‖s of XML signatures, converted to DER for OpenSSL.
fn ecdsa_forms(ec: &openssl::ec::EcKey<openssl::pkey::Public>, signature: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![signature.to_vec()];
    let (Ok(mut order), Ok(mut ctx)) = (
        openssl::bn::BigNum::new(),
        openssl::bn::BigNumContext::new(),
    ) else {
        return forms;
    };
    if ec.group().order(&mut order, &mut ctx).is_err() {
        return forms;
    }
    let half = order.num_bytes() as usize;
    if signature.len() == 2 * half {
        let (r, s) = signature.split_at(half);
        let der = openssl::bn::BigNum::from_slice(r)
            .and_then(|r| Ok((r, openssl::bn::BigNum::from_slice(s)?)))
            .and_then(|(r, s)| openssl::ecdsa::EcdsaSig::from_private_components(r, s))
            .and_then(|sig| sig.to_der());
        if let Ok(der) = der {
            forms.push(der);
        }
    }
    forms
}

/// base64, then raw DEFLATE, bounded; DTDs refused.
fn inflate(encoded: &str) -> Result<String, SloRefusal> {
    let bytes = super::decode_base64(encoded).ok_or(SloRefusal::NotDecodable)?;
    let mut xml = Vec::new();
    flate2::read::DeflateDecoder::new(&bytes[..])
        .take(MAX_XML_BYTES as u64 + 1)
        .read_to_end(&mut xml)
        .map_err(|_| SloRefusal::NotDecodable)?;
    if xml.len() > MAX_XML_BYTES {
        return Err(SloRefusal::TooLarge);
    }
    let xml = String::from_utf8(xml).map_err(|_| SloRefusal::NotDecodable)?;
    if super::metadata::refuse_doctype(&xml) {
        return Err(SloRefusal::Doctype);
    }
    Ok(xml)
}

/// A posted message: base64 XML, bounded; DTDs refused.
fn decode_posted(encoded: &str) -> Result<String, SloRefusal> {
    if encoded.len() > MAX_QUERY_BYTES {
        return Err(SloRefusal::TooLarge);
    }
    let bytes = super::decode_base64(encoded).ok_or(SloRefusal::NotDecodable)?;
    let xml = String::from_utf8(bytes).map_err(|_| SloRefusal::NotDecodable)?;
    if super::metadata::refuse_doctype(&xml) {
        return Err(SloRefusal::Doctype);
    }
    Ok(xml)
}

/// For a posted message whose root is `root`: `None` when it carries no XML signature at all,
/// otherwise the signed element as xmlsec verified it (the bytes that were digested), which
/// must be that root. A document with more than one `root` element, or a signature that does
/// not verify against a configured certificate, is refused.
fn signed_part(xml: &str, root: &[u8], idp: &IdpConfig) -> Result<Option<String>, SloRefusal> {
    use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
    let what = if root == b"LogoutRequest" {
        "LogoutRequest"
    } else {
        "LogoutResponse"
    };
    let (roots, signatures) = count_elements(xml, root).ok_or(SloRefusal::Malformed(what))?;
    if roots != 1 {
        return Err(SloRefusal::Malformed(what));
    }
    if signatures == 0 {
        return Ok(None);
    }
    super::xmldsig::check(xml).map_err(SloRefusal::UnsafeSignature)?;
    let ders =
        super::certs::der_all(&idp.certificates_pem).map_err(|_| SloRefusal::NotConfigured)?;
    if ders.is_empty() {
        return Err(SloRefusal::NotConfigured);
    }
    let certs: Vec<CertificateDer> = ders.into_iter().map(CertificateDer::from).collect();
    let signed = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &certs,
        samael::crypto::ReduceMode::PreDigest,
        Some(&super::acs::XML_SIGNATURE_ALGORITHMS),
    )
    .map_err(|_| SloRefusal::Signature)?;
    // The signature must cover the message itself, not some element inside it.
    match count_elements(&signed, root) {
        Some((1, _)) if root_is(&signed, root) => Ok(Some(signed)),
        _ => Err(SloRefusal::Signature),
    }
}

/// How many `local_name` elements and `Signature` elements the document holds, anywhere.
/// `None` when it is not well-formed.
fn count_elements(xml: &str, local_name: &[u8]) -> Option<(usize, usize)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut found, mut signatures) = (0, 0);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let name = e.local_name();
                if name.as_ref() == local_name {
                    found += 1;
                } else if name.as_ref() == b"Signature" {
                    signatures += 1;
                }
            }
            Ok(Event::Eof) => return Some((found, signatures)),
            Err(_) => return None,
            _ => {}
        }
    }
}

/// Whether the document's first element is `local_name`.
fn root_is(xml: &str, local_name: &[u8]) -> bool {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => return e.local_name().as_ref() == local_name,
            Ok(Event::Eof) | Err(_) => return false,
            _ => {}
        }
    }
}

fn deflate(xml: &str) -> Result<String, String> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(xml.as_bytes())
        .map_err(|e| e.to_string())?;
    let bytes = encoder.finish().map_err(|e| e.to_string())?;
    Ok(STANDARD.encode(bytes))
}

fn check_issuer(issuer: Option<String>, idp: &IdpConfig) -> Result<(), SloRefusal> {
    match issuer {
        Some(i) if i.trim() == idp.entity_id => Ok(()),
        other => Err(SloRefusal::Issuer(other.unwrap_or_default())),
    }
}

/// The Destination must be our logout URL when present. Signed messages sent by HTTP-POST must
/// carry one (SAML bindings, 3.5.5.2): `required` says so, and then its absence is refused.
fn check_destination(
    destination: Option<&str>,
    sp: &SpUrls,
    required: bool,
) -> Result<(), SloRefusal> {
    match destination {
        Some(d) if d != sp.slo => Err(SloRefusal::Destination(d.to_string())),
        None if required => Err(SloRefusal::Destination("(none given)".into())),
        _ => Ok(()),
    }
}

/// The text of the first element with this local name.
fn first_text(xml: &str, local_name: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == local_name => inside = true,
            Ok(Event::Text(t)) if inside => {
                return t.decode().ok().map(|s| s.trim().to_string());
            }
            Ok(Event::End(_)) if inside => return None,
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

/// The IdP's logout requests are taken only from a configured IdP that offers single logout.
fn require_single_logout(idp: &IdpConfig) -> Result<(), SloRefusal> {
    if idp.entity_id.is_empty() || idp.slo_url.is_empty() {
        return Err(SloRefusal::NotConfigured);
    }
    Ok(())
}

/// Checks a LogoutRequest that the IdP sent through the browser (the whole query string).
pub fn check_logout_request(
    query: &str,
    idp: &IdpConfig,
    sp: &SpUrls,
    now: DateTime<Utc>,
) -> Result<LogoutOrder, SloRefusal> {
    require_single_logout(idp)?;
    let params = params(query)?;
    let message = params.get("SAMLRequest").ok_or(SloRefusal::NoMessage)?;
    // The signature first: nothing of an unsigned message is read.
    verify_signature(&params, "SAMLRequest", &idp.certificates_pem)?;
    let xml = inflate(&message.decoded)?;
    let relay_state = params.get("RelayState").map(|r| r.decoded.clone());
    order_from_xml(&xml, idp, sp, now, relay_state, false)
}

/// Checks a LogoutRequest that the IdP posted through the browser (HTTP-POST binding): base64
/// XML with an enveloped XML signature, which samael and libxmlsec verify. Only the signed
/// bytes are read. CPU-bound and behind libxmlsec's global lock: call it from a blocking thread.
pub fn check_posted_logout_request(
    saml_request: &str,
    relay_state: Option<String>,
    idp: &IdpConfig,
    sp: &SpUrls,
    now: DateTime<Utc>,
) -> Result<LogoutOrder, SloRefusal> {
    require_single_logout(idp)?;
    // RelayState is not signed in this binding, and goes back to the IdP: at most the 80
    // bytes the bindings allow.
    if relay_state.as_ref().is_some_and(|r| r.len() > 80) {
        return Err(SloRefusal::BadQuery);
    }
    let xml = decode_posted(saml_request)?;
    let signed = signed_part(&xml, b"LogoutRequest", idp)?.ok_or(SloRefusal::Unsigned)?;
    order_from_xml(&signed, idp, sp, now, relay_state, true)
}

/// The checks every LogoutRequest passes once its XML is known to be the signed one.
fn order_from_xml(
    xml: &str,
    idp: &IdpConfig,
    sp: &SpUrls,
    now: DateTime<Utc>,
    relay_state: Option<String>,
    posted: bool,
) -> Result<LogoutOrder, SloRefusal> {
    let request: samael::schema::LogoutRequest = xml
        .parse()
        .map_err(|_| SloRefusal::Malformed("LogoutRequest"))?;
    check_issuer(request.issuer.and_then(|i| i.value), idp)?;
    check_destination(request.destination.as_deref(), sp, posted)?;
    let issued = request
        .issue_instant
        .ok_or(SloRefusal::Malformed("LogoutRequest"))?;
    let skew = chrono::Duration::seconds(idp.clock_skew_seconds);
    if issued > now + skew || issued < now - chrono::Duration::seconds(MAX_AGE_SECONDS) - skew {
        return Err(SloRefusal::Stale);
    }
    let id = request
        .id
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .ok_or(SloRefusal::Malformed("LogoutRequest"))?;
    let name_id = request
        .name_id
        .map(|n| n.value.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or(SloRefusal::NoNameId)?;
    Ok(LogoutOrder {
        id,
        name_id,
        session_index: first_text(xml, b"SessionIndex").filter(|s| !s.is_empty()),
        relay_state,
    })
}

/// Reads the IdP's answer to our logout request (the whole query string).
pub fn check_logout_response(
    query: &str,
    idp: &IdpConfig,
    sp: &SpUrls,
) -> Result<LogoutAnswer, SloRefusal> {
    let params = params(query)?;
    let message = params.get("SAMLResponse").ok_or(SloRefusal::NoMessage)?;
    // An unsigned answer is read too: it only says whether the IdP ended its own session, and
    // changes nothing here (the panel session ended before the browser left). A signature
    // that is present must verify.
    let signed = params.contains_key("SigAlg") || params.contains_key("Signature");
    if signed {
        verify_signature(&params, "SAMLResponse", &idp.certificates_pem)?;
    }
    let xml = inflate(&message.decoded)?;
    answer_from_xml(&xml, idp, sp, signed, false)
}

/// Reads the IdP's answer to our logout request, posted (HTTP-POST binding). As with the
/// Redirect binding, an unsigned answer is read; a signature that is present must verify, and
/// then only the signed bytes are read. Call it from a blocking thread.
pub fn check_posted_logout_response(
    saml_response: &str,
    idp: &IdpConfig,
    sp: &SpUrls,
) -> Result<LogoutAnswer, SloRefusal> {
    let xml = decode_posted(saml_response)?;
    match signed_part(&xml, b"LogoutResponse", idp)? {
        Some(signed) => answer_from_xml(&signed, idp, sp, true, true),
        None => answer_from_xml(&xml, idp, sp, false, true),
    }
}

fn answer_from_xml(
    xml: &str,
    idp: &IdpConfig,
    sp: &SpUrls,
    signed: bool,
    posted: bool,
) -> Result<LogoutAnswer, SloRefusal> {
    let response: samael::schema::LogoutResponse = xml
        .parse()
        .map_err(|_| SloRefusal::Malformed("LogoutResponse"))?;
    check_issuer(response.issuer.and_then(|i| i.value), idp)?;
    check_destination(response.destination.as_deref(), sp, posted)?;
    let in_response_to = response
        .in_response_to
        .filter(|id| !id.is_empty())
        .ok_or(SloRefusal::Malformed("LogoutResponse"))?;
    let success = response
        .status
        .and_then(|s| s.status_code.value)
        .is_some_and(|v| v == STATUS_SUCCESS);
    Ok(LogoutAnswer {
        in_response_to,
        success,
        signed,
    })
}

fn instant(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `destination?field=…[&RelayState=…][&SigAlg=…&Signature=…]`, signed (RSA-SHA256) over
/// exactly the parameters the binding names when `key` is given.
fn redirect_url(
    destination: &str,
    field: &str,
    xml: &str,
    relay_state: Option<&str>,
    key: Option<&PKey<Private>>,
) -> Result<String, String> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair(field, &deflate(xml)?);
    if let Some(relay) = relay_state {
        query.append_pair("RelayState", relay);
    }
    if key.is_some() {
        query.append_pair("SigAlg", RSA_SHA256);
    }
    let mut query = query.finish();
    if let Some(key) = key {
        let mut signer =
            openssl::sign::Signer::new(MessageDigest::sha256(), key).map_err(|e| e.to_string())?;
        signer.update(query.as_bytes()).map_err(|e| e.to_string())?;
        let signature = signer.sign_to_vec().map_err(|e| e.to_string())?;
        query.push_str("&Signature=");
        query.extend(form_urlencoded::byte_serialize(
            STANDARD.encode(signature).as_bytes(),
        ));
    }
    let joiner = if destination.contains('?') { '&' } else { '?' };
    Ok(format!("{destination}{joiner}{query}"))
}

/// Where to send the browser to sign `subject` out at the IdP, with our request `id` (also the
/// RelayState, so the answer finds it).
pub fn logout_request_url(
    idp: &IdpConfig,
    sp: &SpUrls,
    subject: &SamlSubject,
    id: &str,
    key: Option<&PKey<Private>>,
) -> Result<String, String> {
    let format = subject
        .name_id_format
        .as_deref()
        .map(|f| format!(" Format=\"{}\"", escape(f)))
        .unwrap_or_default();
    let session_index = subject
        .session_index
        .as_deref()
        .map(|s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(s)))
        .unwrap_or_default();
    let xml = format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" \
         IssueInstant=\"{at}\" Destination=\"{dest}\"><saml:Issuer>{issuer}</saml:Issuer>\
         <saml:NameID{format}>{name_id}</saml:NameID>{session_index}</samlp:LogoutRequest>",
        id = escape(id),
        at = instant(Utc::now()),
        dest = escape(&idp.slo_url),
        issuer = escape(&sp.entity_id),
        name_id = escape(&subject.name_id),
    );
    redirect_url(&idp.slo_url, "SAMLRequest", &xml, Some(id), key)
}

/// Where to send the browser with our answer to the IdP's logout request.
pub fn logout_response_url(
    idp: &IdpConfig,
    sp: &SpUrls,
    order: &LogoutOrder,
    response_id: &str,
    key: Option<&PKey<Private>>,
) -> Result<String, String> {
    let xml = format!(
        "<samlp:LogoutResponse xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" \
         IssueInstant=\"{at}\" Destination=\"{dest}\" InResponseTo=\"{answers}\">\
         <saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value=\"{STATUS_SUCCESS}\"/>\
         </samlp:Status></samlp:LogoutResponse>",
        id = escape(response_id),
        at = instant(Utc::now()),
        dest = escape(&idp.slo_url),
        answers = escape(&order.id),
        issuer = escape(&sp.entity_id),
    );
    redirect_url(
        &idp.slo_url,
        "SAMLResponse",
        &xml,
        order.relay_state.as_deref(),
        key,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A signed Redirect-binding query by a fresh key, and that key's certificate (PEM).
    fn signed_query(relay: &str) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::saml::sp_key::load_or_create(dir.path(), "idp.test").unwrap();
        let pem = String::from_utf8(
            openssl::x509::X509::from_der(&key.cert_der)
                .unwrap()
                .to_pem()
                .unwrap(),
        )
        .unwrap();
        let url = redirect_url(
            "https://sp.test/saml/slo",
            "SAMLRequest",
            "<samlp:LogoutRequest/>",
            Some(relay),
            Some(&key.key),
        )
        .unwrap();
        let query = url.split_once('?').unwrap().1.to_string();
        (query, pem)
    }

    fn verify(query: &str, pem: &str) -> Result<(), SloRefusal> {
        verify_signature(&params(query)?, "SAMLRequest", pem)
    }

    #[test]
    fn the_signature_covers_the_query_as_sent() {
        let (query, pem) = signed_query("back to /console?x=1 ~*");
        assert_eq!(verify(&query, &pem), Ok(()));
        let tampered = query.replacen("RelayState=", "RelayState=x", 1);
        assert_eq!(verify(&tampered, &pem), Err(SloRefusal::Signature));
        let without_relay: String = query
            .split('&')
            .filter(|p| !p.starts_with("RelayState="))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(verify(&without_relay, &pem), Err(SloRefusal::Signature));
        let (_, other_pem) = signed_query("x");
        assert_eq!(verify(&query, &other_pem), Err(SloRefusal::Signature));
    }

    fn enc(value: &str) -> String {
        form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    /// An ECDSA (P-256) certificate and a query signed with its key, the signature value in
    /// DER or, with `raw`, as r‖s.
    fn ecdsa_signed_query(raw: bool) -> (String, String) {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "ec idp").unwrap();
        let name = name.build();
        let mut cert = openssl::x509::X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        let pem = String::from_utf8(cert.build().to_pem().unwrap()).unwrap();

        let signed = format!(
            "SAMLRequest=abc%2B&RelayState=r&SigAlg={}",
            enc(ECDSA_SHA256)
        );
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &key).unwrap();
        signer.update(signed.as_bytes()).unwrap();
        let der = signer.sign_to_vec().unwrap();
        let value = if raw {
            let sig = openssl::ecdsa::EcdsaSig::from_der(&der).unwrap();
            let mut out = sig.r().to_vec_padded(32).unwrap();
            out.extend(sig.s().to_vec_padded(32).unwrap());
            out
        } else {
            der
        };
        let query = format!("{signed}&Signature={}", enc(&STANDARD.encode(value)));
        (query, pem)
    }

    #[test]
    fn ecdsa_signatures_verify_in_either_encoding() {
        for raw in [false, true] {
            let (query, pem) = ecdsa_signed_query(raw);
            assert_eq!(verify(&query, &pem), Ok(()), "raw={raw}");
            let tampered = query.replacen("RelayState=r", "RelayState=s", 1);
            assert_eq!(verify(&tampered, &pem), Err(SloRefusal::Signature));
            // An RSA algorithm name does not make an EC key's signature acceptable.
            let renamed = query.replacen(&enc(ECDSA_SHA256), &enc(RSA_SHA256), 1);
            assert_eq!(verify(&renamed, &pem), Err(SloRefusal::Signature));
        }
    }

    #[test]
    fn hostile_queries_are_refused_without_a_panic() {
        let (query, pem) = signed_query("r");
        let unsigned: String = query
            .split('&')
            .filter(|p| !p.starts_with("Signature="))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(verify(&unsigned, &pem), Err(SloRefusal::Unsigned));
        let twice = format!("{query}&RelayState=other");
        assert_eq!(verify(&twice, &pem), Err(SloRefusal::BadQuery));
        let sha1 = query.replace("xmldsig-more%23rsa-sha256", "xmldsig%23rsa-sha1");
        assert!(matches!(verify(&sha1, &pem), Err(SloRefusal::Algorithm(_))));
        let garbage = query.replace("Signature=", "Signature=%%%");
        assert_eq!(verify(&garbage, &pem), Err(SloRefusal::Signature));
        assert_eq!(verify("", &pem), Err(SloRefusal::Unsigned));
        assert_eq!(
            verify(&"a=b&".repeat(20_000), &pem),
            Err(SloRefusal::BadQuery)
        );
    }

    #[test]
    fn messages_inflate_within_bounds() {
        let xml = "<samlp:LogoutRequest ID=\"a\"/>";
        assert_eq!(inflate(&deflate(xml).unwrap()).unwrap(), xml);
        let dtd = "<!DOCTYPE x [<!ENTITY e \"e\">]><x>&e;</x>";
        assert_eq!(inflate(&deflate(dtd).unwrap()), Err(SloRefusal::Doctype));
        let bomb = "a".repeat(MAX_XML_BYTES + 10);
        assert_eq!(inflate(&deflate(&bomb).unwrap()), Err(SloRefusal::TooLarge));
        assert_eq!(inflate("not base64!"), Err(SloRefusal::NotDecodable));
        assert_eq!(inflate("aGVsbG8="), Err(SloRefusal::NotDecodable));
    }

    #[test]
    fn the_session_index_is_read_from_its_element() {
        let xml = "<samlp:LogoutRequest xmlns:samlp=\"p\" xmlns:saml=\"a\"><saml:NameID>n</saml:NameID>\
                   <samlp:SessionIndex> s-1 </samlp:SessionIndex></samlp:LogoutRequest>";
        assert_eq!(first_text(xml, b"SessionIndex").as_deref(), Some("s-1"));
        assert_eq!(first_text(xml, b"Missing"), None);
    }
}
