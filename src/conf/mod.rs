//! Pure configuration code: XML documents in and out, no I/O and no unsafe code.

#![forbid(unsafe_code)]

pub mod backup;
pub mod checkpoint;
pub mod domain;
pub mod schema;
pub mod xml;

use crate::error::{Code, Domain, Error, Result};
use xml::Element;

/// Parses an XML document whose root must be `root`.
///
/// Mirrors libvirt's two failure modes: a document that is not well-formed is
/// `VIR_ERR_XML_DETAIL` in the caller's error domain, with the parser's text prefixed by
/// `(<context>):<line>: `; a well-formed document with another root element is
/// `VIR_ERR_XML_ERROR` in `VIR_FROM_XML`.
pub fn parse_document(text: &str, context: &str, root: &str, domain: Domain) -> Result<Element> {
    let element = Element::parse(text).map_err(|e| {
        let source_line = text.lines().nth(e.line.saturating_sub(1)).unwrap_or("(null)");
        let source_line = if text.is_empty() { "(null)" } else { source_line };
        Error::new(domain, Code::VIR_ERR_XML_DETAIL, format!("({context}):{}: {}\n{source_line}\n^", e.line, e.message))
    })?;
    if element.name != root {
        return Err(Error::new(
            Domain::VIR_FROM_XML,
            Code::VIR_ERR_XML_ERROR,
            format!("expecting root element of '{root}', not '{}'", element.name),
        ));
    }
    Ok(element)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_and_root_errors() {
        let e = parse_document("", "ctx", "r", Domain::VIR_FROM_DOMAIN).unwrap_err();
        assert_eq!((e.code, e.domain), (Code::VIR_ERR_XML_DETAIL, Domain::VIR_FROM_DOMAIN));
        assert!(e.message.starts_with("(ctx):1: "), "{}", e.message);
        let e = parse_document("<x/>", "ctx", "r", Domain::VIR_FROM_DOMAIN).unwrap_err();
        assert_eq!((e.code, e.domain), (Code::VIR_ERR_XML_ERROR, Domain::VIR_FROM_XML));
        assert_eq!(e.message, "XML error: expecting root element of 'r', not 'x'");
        assert!(parse_document("<r/>", "ctx", "r", Domain::VIR_FROM_DOMAIN).is_ok());
    }
}
