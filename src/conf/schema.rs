//! What libvirt's RelaxNG schemas check, for the documents this library validates by
//! hand: the error libvirt reports when a document fails its schema, and the lexical
//! rules of the datatypes several schemas share.

use super::xml::{Element, Node};
use crate::error::{Code, Domain, Error, Result};

/// One of libvirt's schema files, named in its validation errors.
#[derive(Debug, Clone, Copy)]
pub struct Schema(pub &'static str);

impl Schema {
    /// `VIR_ERR_XML_INVALID_SCHEMA` with libvirt's text: the schema, then what libxml2
    /// said (`detail`, one line each, newline-terminated).
    pub fn error(self, detail: impl Into<String>) -> Error {
        Error::new(
            Domain::VIR_FROM_XML,
            Code::VIR_ERR_XML_INVALID_SCHEMA,
            format!("Unable to validate doc against {}\n{}", self.0, detail.into()),
        )
    }

    /// `Element <name> failed to validate content`.
    pub fn bad_content(self, element: &str) -> Error {
        self.error(format!("Element {element} failed to validate content\n"))
    }

    /// Text other than layout whitespace where the schema allows only elements.
    pub fn no_stray_text(self, element: &Element) -> Result<()> {
        let stray = element.children.iter().any(|n| matches!(n, Node::Text(t) if !t.trim().is_empty()));
        if stray { Err(self.bad_content(&element.name)) } else { Ok(()) }
    }
}

/// `diskTarget`: `(ioemu:)?(fd|hd|sd|vd|xvd|ubd)[a-zA-Z0-9_]+`.
pub fn valid_disk_target(name: &str) -> bool {
    let rest = name.strip_prefix("ioemu:").unwrap_or(name);
    ["fd", "hd", "sd", "vd", "xvd", "ubd"].iter().any(|prefix| {
        rest.strip_prefix(prefix)
            .is_some_and(|tail| !tail.is_empty() && tail.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// `absFilePath`: `(/|[a-zA-Z]:\\).+`, where the pattern's `.` matches anything but a
/// line break.
pub fn valid_abs_path(path: &str) -> bool {
    let rest = if let Some(rest) = path.strip_prefix('/') {
        rest
    } else {
        let mut chars = path.chars();
        match (chars.next(), chars.next(), chars.next()) {
            (Some(d), Some(':'), Some('\\')) if d.is_ascii_alphabetic() => chars.as_str(),
            _ => return false,
        }
    };
    !rest.is_empty() && !rest.contains(['\n', '\r'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatypes() {
        for ok in ["vda", "hdc", "sda1", "xvdb", "ubda", "fd0", "ioemu:hda", "vd_x", "vdextradisk", "ubd0"] {
            assert!(valid_disk_target(ok), "{ok}");
        }
        for bad in ["vd", "nvme0n1", "vda-1", "vda.", "", "ioemu:", "/a.img", " vda", "vda "] {
            assert!(!valid_disk_target(bad), "{bad}");
        }
        for ok in ["/x", "//", "C:\\x", "z:\\a b", "/a b/c"] {
            assert!(valid_abs_path(ok), "{ok}");
        }
        for bad in ["/", "", "rel/x", "C:\\", "C:/x", "1:\\x", " /x", "/a\nb", "/a\rb"] {
            assert!(!valid_abs_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_schema() {
        let s = Schema("/x.rng");
        let e = s.bad_content("disk");
        assert_eq!(e.code, Code::VIR_ERR_XML_INVALID_SCHEMA);
        assert!(
            e.message.ends_with("Unable to validate doc against /x.rng\nElement disk failed to validate content\n")
        );
        let element = Element::parse("<a> text <b/></a>").unwrap();
        assert!(s.no_stray_text(&element).is_err());
        assert!(s.no_stray_text(&Element::parse("<a>\n  <b/>\n</a>").unwrap()).is_ok());
    }
}
