//! What an XML signature may ask of the verifier, checked before libxmlsec sees it.
//!
//! libxmlsec resolves a signature's references, runs its transforms and reads its key
//! information before it knows whether the signature value verifies, and by default it follows
//! any reference URI and runs any transform it was built with (XSLT and XPath among them). The
//! document arrives from the network unauthenticated, so those steps would be the attacker's to
//! choose: a reference to `http://…` or `file:…` makes the server fetch it, an XSLT transform
//! runs a stylesheet. SAML signatures need none of that: a reference to an element of the same
//! document (`#id`, or the whole document as `""`), the enveloped-signature transform and
//! canonicalization. Anything else is refused here, before any signature work.

use quick_xml::events::Event;

/// The transforms and canonicalization methods a SAML signature uses.
const ALLOWED_TRANSFORMS: [&str; 7] = [
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    "http://www.w3.org/2006/12/xml-c14n11",
    "http://www.w3.org/2006/12/xml-c14n11#WithComments",
];

/// Why a document's signature is refused before verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    #[error("a signature reference points outside the document ({0:.80})")]
    RemoteReference(String),
    #[error("a signature asks for transform {0:.120}, which is not canonicalization")]
    Transform(String),
    #[error("a signature asks the verifier to retrieve a key ({0})")]
    KeyRetrieval(&'static str),
    #[error("the document is not well-formed XML")]
    NotXml,
}

/// Checks every `Reference`, `Transform`, `CanonicalizationMethod` and key-retrieval element
/// in `xml`, wherever it is (a wrapped copy is checked like the real one).
pub fn check(xml: &str) -> Result<(), Unsafe> {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        let event = reader.read_event().map_err(|_| Unsafe::NotXml)?;
        let element = match &event {
            Event::Start(e) | Event::Empty(e) => e,
            Event::Eof => return Ok(()),
            _ => continue,
        };
        let attribute = |name: &[u8]| -> Result<Option<String>, Unsafe> {
            for a in element.attributes() {
                let a = a.map_err(|_| Unsafe::NotXml)?;
                if a.key.local_name().as_ref() == name {
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|_| Unsafe::NotXml)?;
                    return Ok(Some(value.into_owned()));
                }
            }
            Ok(None)
        };
        match element.local_name().as_ref() {
            b"Reference" => {
                if let Some(uri) = attribute(b"URI")?
                    && !(uri.is_empty() || uri.starts_with('#'))
                {
                    return Err(Unsafe::RemoteReference(uri));
                }
            }
            b"Transform" | b"CanonicalizationMethod" => {
                let algorithm = attribute(b"Algorithm")?.unwrap_or_default();
                if !ALLOWED_TRANSFORMS.contains(&algorithm.as_str()) {
                    return Err(Unsafe::Transform(algorithm));
                }
            }
            b"RetrievalMethod" => return Err(Unsafe::KeyRetrieval("RetrievalMethod")),
            b"KeyInfoReference" => return Err(Unsafe::KeyRetrieval("KeyInfoReference")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r##"<r ID="a"><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:Reference URI="#a"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms></ds:Reference></ds:SignedInfo></ds:Signature></r>"##;

    #[test]
    fn a_saml_signature_passes() {
        assert_eq!(check(GOOD), Ok(()));
        assert_eq!(check(&GOOD.replace("URI=\"#a\"", "URI=\"\"")), Ok(()));
    }

    #[test]
    fn what_would_reach_outside_or_run_code_is_refused() {
        let remote = GOOD.replace("#a", "http://169.254.169.254/latest/meta-data/");
        assert!(matches!(check(&remote), Err(Unsafe::RemoteReference(_))));
        let file = GOOD.replace("#a", "file:///etc/passwd");
        assert!(matches!(check(&file), Err(Unsafe::RemoteReference(_))));
        let xslt = GOOD.replace(
            "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
            "http://www.w3.org/TR/1999/REC-xslt-19991116",
        );
        assert!(matches!(check(&xslt), Err(Unsafe::Transform(_))));
        let c14n = GOOD.replace(
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"/>",
        );
        assert!(matches!(check(&c14n), Err(Unsafe::Transform(_))));
        let retrieval = GOOD.replace(
            "</ds:SignedInfo>",
            "</ds:SignedInfo><ds:KeyInfo><ds:RetrievalMethod URI=\"http://evil.test/k\"/></ds:KeyInfo>",
        );
        assert_eq!(
            check(&retrieval),
            Err(Unsafe::KeyRetrieval("RetrievalMethod"))
        );
        assert_eq!(check("<a><b></a>"), Err(Unsafe::NotXml));
    }
}
