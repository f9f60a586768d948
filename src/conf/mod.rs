//! Pure configuration code: XML documents in and out, no I/O and no unsafe code.

#![forbid(unsafe_code)]

pub mod backup;
pub mod checkpoint;
pub mod domain;
pub mod schema;
pub mod settings;
pub mod snapshot;
pub mod xml;

use crate::error::{Code, Domain, Error, Result};
use xml::Element;

/// The largest XML document accepted: libvirt's limit on a string between a client and
/// its daemon (`REMOTE_STRING_MAX`, 4 MiB), which every definition a libvirt client can
/// send fits in. A larger one is refused before any of it is parsed.
pub const MAX_XML_BYTES: usize = 4 * 1024 * 1024;

/// The largest document read back from a driver's own state: what it stores of an
/// accepted document can be larger than the document (a checkpoint's metadata holds its
/// domain's definition, and formatting adds what was left implicit).
pub const MAX_STORED_XML_BYTES: usize = 3 * MAX_XML_BYTES;

/// Parses an XML document whose root must be `root`.
///
/// Mirrors libvirt's two failure modes: a document that is not well-formed is
/// `VIR_ERR_XML_DETAIL` in the caller's error domain, with the parser's text prefixed by
/// `(<context>):<line>: `; a well-formed document with another root element is
/// `VIR_ERR_XML_ERROR` in `VIR_FROM_XML`.
pub fn parse_document(text: &str, context: &str, root: &str, domain: Domain) -> Result<Element> {
    parse_bounded(text, context, root, domain, MAX_XML_BYTES)
}

/// [`parse_document`] for a document of the driver's own state, which may be as large
/// as [`MAX_STORED_XML_BYTES`].
pub fn parse_stored_document(text: &str, context: &str, root: &str, domain: Domain) -> Result<Element> {
    parse_bounded(text, context, root, domain, MAX_STORED_XML_BYTES)
}

fn parse_bounded(text: &str, context: &str, root: &str, domain: Domain, limit: usize) -> Result<Element> {
    if text.len() > limit {
        return Err(Error::new(
            domain,
            Code::VIR_ERR_XML_ERROR,
            format!("document of {} bytes is larger than the {limit} bytes accepted", text.len()),
        ));
    }
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

    #[test]
    fn documents_are_bounded() {
        let big = format!("<r>{}</r>", "x".repeat(MAX_XML_BYTES));
        let e = parse_document(&big, "ctx", "r", Domain::VIR_FROM_DOMAIN).unwrap_err();
        assert_eq!((e.code, e.domain), (Code::VIR_ERR_XML_ERROR, Domain::VIR_FROM_DOMAIN));
        assert!(e.message.ends_with(&format!("is larger than the {MAX_XML_BYTES} bytes accepted")), "{}", e.message);
        let fits = format!("<r>{}</r>", "x".repeat(MAX_XML_BYTES - 7));
        assert!(parse_document(&fits, "ctx", "r", Domain::VIR_FROM_DOMAIN).is_ok());
    }
}
