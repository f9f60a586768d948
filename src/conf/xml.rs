//! A small XML element tree: parsed with quick-xml, printed the way libvirt prints its
//! XML (two-space indent, single-quoted attributes, one element per line).
//!
//! Comments, processing instructions and the XML declaration are dropped; whitespace
//! between elements is layout, not content. A DOCTYPE is refused, so no entity other than
//! the five predefined ones and character references is ever expanded.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// Documents nested deeper than this are refused (bounds recursion when printing).
pub const MAX_DEPTH: usize = 256;

/// A node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An element with its attributes (in document order) and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

/// Why a document could not be read: a 1-based line and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl Element {
    /// An element with no attributes and no children.
    pub fn new(name: impl Into<String>) -> Element {
        Element { name: name.into(), ..Default::default() }
    }

    /// Adds an attribute (builder style).
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Element {
        self.attrs.push((name.to_string(), value.into()));
        self
    }

    /// Adds a text child (builder style).
    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Adds an element child (builder style).
    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// Parses a whole document and returns its root element.
    pub fn parse(text: &str) -> Result<Element, ParseError> {
        parse_document(text)
    }

    /// The value of an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Sets an attribute, replacing its value in place or appending it.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name.to_string(), value)),
        }
    }

    /// Removes an attribute, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let at = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(at).1)
    }

    /// The element children.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The element children, mutably.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The first child element with this name, mutably.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.name == name)
    }

    /// All child elements with this name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name == name)
    }

    /// Removes every child element with this name.
    pub fn remove_children(&mut self, name: &str) {
        self.children.retain(|n| !matches!(n, Node::Element(e) if e.name == name));
    }

    /// The concatenated text of the direct text children.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    /// The text of the first child element with this name.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(Element::text)
    }

    /// Prints the element in libvirt's layout, ending with a newline.
    pub fn format(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    /// Prints the element at the given indentation (in spaces) into `out`.
    ///
    /// Element-only content goes one child per line; text-only content stays on the
    /// element's line; mixed content (text beside elements) is printed inline exactly as
    /// it is, since re-indenting it would change the text.
    pub fn write(&self, out: &mut String, indent: usize) {
        push_indent(out, indent);
        self.write_open(out);
        if self.children.is_empty() {
            out.push_str("/>\n");
            return;
        }
        out.push('>');
        let has_elements = self.elements().next().is_some();
        let mixed =
            has_elements && self.children.iter().any(|n| matches!(n, Node::Text(t) if !escape(t).trim().is_empty()));
        if !has_elements || mixed {
            self.write_content_inline(out);
        } else {
            out.push('\n');
            for child in self.elements() {
                child.write(out, indent + 2);
            }
            push_indent(out, indent);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push_str(">\n");
    }

    fn write_open(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            escape_into(out, v);
            out.push('\'');
        }
    }

    fn write_content_inline(&self, out: &mut String) {
        for n in &self.children {
            match n {
                Node::Text(t) => escape_into(out, t),
                Node::Element(e) => {
                    e.write_open(out);
                    if e.children.is_empty() {
                        out.push_str("/>");
                    } else {
                        out.push('>');
                        e.write_content_inline(out);
                        out.push_str("</");
                        out.push_str(&e.name);
                        out.push('>');
                    }
                }
            }
        }
    }
}

fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Escapes text the way libvirt's XML writer does: the five markup characters become
/// entities, and control characters other than tab, newline and carriage return are
/// dropped (XML 1.0 cannot carry them).
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

/// `text` escaped as [`escape_into`] does.
pub fn escape(text: &str) -> Cow<'_, str> {
    if text
        .chars()
        .any(|c| matches!(c, '<' | '>' | '&' | '"' | '\'') || ((c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')))
    {
        let mut out = String::with_capacity(text.len() + 8);
        escape_into(&mut out, text);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn line_of(text: &str, pos: u64) -> usize {
    let end = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// An XML 1.0 name: a letter, `_` or `:` first, then letters, digits, `.`, `-`, `_`, `:`
/// (non-ASCII letters and marks included).
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| {
            c.is_alphanumeric()
                || matches!(c, '.' | '-' | '_' | ':' | '\u{B7}')
                || (!c.is_ascii() && !c.is_whitespace())
        })
}

fn start_element(start: &BytesStart<'_>) -> Result<Element, String> {
    let name = start.name().as_ref().to_string();
    if !is_xml_name(&name) {
        return Err(format!("StartTag: invalid element name '{name}'"));
    }
    let mut element = Element::new(name);
    let mut attrs = start.attributes();
    attrs.with_checks(true);
    for attr in attrs {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = attr.key.as_ref().to_string();
        if !is_xml_name(&key) {
            return Err(format!("invalid attribute name '{key}'"));
        }
        let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|e| e.to_string())?;
        // Literal characters were checked with the whole document; this catches character
        // references to ones XML does not allow (`&#1;`, `&#xFFFF;`).
        if let Some(c) = value.chars().find(|&c| !is_xml_char(c)) {
            return Err(format!("xmlParseCharRef: invalid xmlChar value {}", c as u32));
        }
        element.attrs.push((key, value.into_owned()));
    }
    Ok(element)
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

/// Removes the whitespace between child elements of element-only content: it is layout,
/// not content (the printer lays elements out again).
fn drop_layout(element: &mut Element) {
    let has_elements = element.children.iter().any(|n| matches!(n, Node::Element(_)));
    let blank_text_only = element.children.iter().all(|n| match n {
        Node::Text(t) => t.trim().is_empty(),
        Node::Element(_) => true,
    });
    if has_elements && blank_text_only {
        element.children.retain(|n| matches!(n, Node::Element(_)));
    }
}

/// True for the characters XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
}

fn parse_document(text: &str) -> Result<Element, ParseError> {
    if let Some(at) = text.find(|c| !is_xml_char(c)) {
        let c = text[at..].chars().next().unwrap_or_default();
        return Err(ParseError {
            line: line_of(text, at as u64),
            message: format!("invalid character 0x{:x} in the document", c as u32),
        });
    }
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;

    let fail = |pos: u64, message: String| ParseError { line: line_of(text, pos), message };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;

    // Text goes to the open element; outside the root only whitespace is allowed.
    fn add_text(stack: &mut [Element], root_done: bool, piece: &str) -> Result<(), String> {
        match stack.last_mut() {
            Some(parent) => {
                match parent.children.last_mut() {
                    Some(Node::Text(prev)) => prev.push_str(piece),
                    _ => parent.children.push(Node::Text(piece.to_string())),
                }
                Ok(())
            }
            None if piece.trim().is_empty() => Ok(()),
            None if root_done => Err("Extra content at the end of the document".to_string()),
            None => Err("Start tag expected, '<' not found".to_string()),
        }
    }

    loop {
        let event = reader.read_event().map_err(|e| fail(reader.error_position(), e.to_string()))?;
        let pos = reader.buffer_position();
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() && stack.is_empty() => {
                let _ = start;
                return Err(fail(pos, "Extra content at the end of the document".to_string()));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(pos, format!("Excessive depth in document: {MAX_DEPTH}")));
                }
                stack.push(start_element(&start).map_err(|m| fail(pos, m))?);
            }
            Event::Empty(start) => {
                let element = start_element(&start).map_err(|m| fail(pos, m))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let mut element = stack.pop().ok_or_else(|| fail(pos, "unexpected end tag".to_string()))?;
                drop_layout(&mut element);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                add_text(&mut stack, root.is_some(), &content).map_err(|m| fail(pos, m))?;
            }
            Event::CData(c) => {
                let content = c.xml10_content().into_owned();
                if stack.is_empty() {
                    return Err(fail(pos, "CDATA outside the root element".to_string()));
                }
                add_text(&mut stack, root.is_some(), &content).map_err(|m| fail(pos, m))?;
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| fail(pos, e.to_string()))?
                } else {
                    let name: &str = &r;
                    predefined_entity(name)
                };
                let c = resolved.ok_or_else(|| {
                    let name: &str = &r;
                    fail(pos, format!("Entity '{name}' not defined"))
                })?;
                if !is_xml_char(c) {
                    return Err(fail(pos, format!("xmlParseCharRef: invalid xmlChar value {}", c as u32)));
                }
                add_text(&mut stack, root.is_some(), c.encode_utf8(&mut [0; 4])).map_err(|m| fail(pos, m))?;
            }
            Event::DocType(_) => return Err(fail(pos, "document type declarations are not accepted".to_string())),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(fail(text.len() as u64, format!("Premature end of data in tag {}", open.name)));
    }
    root.ok_or_else(|| fail(text.len() as u64, "Document is empty".to_string()))
}

/// An element travels (in a driver's own state files) as its XML text.
impl serde::Serialize for Element {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.format())
    }
}

impl<'de> serde::Deserialize<'de> for Element {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Element, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        Element::parse(&text).map_err(|e| serde::de::Error::custom(format!("line {}: {}", e.line, e.message)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_layout() {
        let doc = "<?xml version='1.0'?>\n<!-- c -->\n<a x=\"1\" y='&lt;&amp;'>\n <b>t&#65;xt</b><c/>\n  <d><e k='v'/></d></a>\n";
        let root = Element::parse(doc).unwrap();
        assert_eq!(root.attr("y"), Some("<&"));
        assert_eq!(root.child_text("b").as_deref(), Some("tAxt"));
        assert_eq!(
            root.format(),
            "<a x='1' y='&lt;&amp;'>\n  <b>tAxt</b>\n  <c/>\n  <d>\n    <e k='v'/>\n  </d>\n</a>\n"
        );
    }

    #[test]
    fn layout_whitespace_is_not_content() {
        let a = Element::parse("<a>\n  <b/>\n  <c>x</c>\n</a>").unwrap();
        let b = Element::parse("<a><b/><c>x</c></a>").unwrap();
        assert_eq!(a, b);
        // In mixed content, whitespace between elements is kept.
        let m = Element::parse("<p><b>x</b> <i>y</i>z</p>").unwrap();
        assert_eq!(m.children.len(), 4);
    }

    #[test]
    fn text_keeps_whitespace_and_escapes_quotes() {
        let root = Element::parse("<d>  a\n\tb 'q' \"w\" </d>").unwrap();
        assert_eq!(root.text(), "  a\n\tb 'q' \"w\" ");
        assert_eq!(root.format(), "<d>  a\n\tb &apos;q&apos; &quot;w&quot; </d>\n");
    }

    #[test]
    fn control_characters_are_dropped_on_output() {
        assert_eq!(escape("a\u{1}b\tc"), "ab\tc");
        // A text node of only control characters (built in code; documents cannot hold
        // them) is layout, not content.
        let root = Element::new("a").with_child(Element::new("b")).with_text("\u{1}").with_child(Element::new("c"));
        let printed = root.format();
        assert_eq!(printed, "<a>\n  <b/>\n  <c/>\n</a>\n");
        assert_eq!(Element::parse(&printed).unwrap().format(), printed);
    }

    #[test]
    fn mixed_content_is_printed_as_given() {
        let doc = "<r>\n  <p>one <b>two</b>\n three <i k='v'/> </p>\n</r>";
        let printed = Element::parse(doc).unwrap().format();
        assert_eq!(printed, "<r>\n  <p>one <b>two</b>\n three <i k='v'/> </p>\n</r>\n");
        assert_eq!(Element::parse(&printed).unwrap().format(), printed);
    }

    #[test]
    fn malformed_documents_are_refused_with_a_line() {
        for (doc, line) in [
            ("", 1),
            ("garbage", 1),
            ("<a>", 1),
            ("<a>\n</b>", 2),
            ("<a/><b/>", 1),
            ("<a x='1' x='2'/>", 1),
            ("<a>&foo;</a>", 1),
            ("<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>", 1),
            ("<a/>trailing", 1),
            ("<a>\u{1}</a>", 1),
            ("<a>&#1;</a>", 1),
            ("<a x='&#1;'/>", 1),
            ("<a x='&#xFFFF;'/>", 1),
            ("<a><\r\r/></a>", 1),
            ("<a><1b/></a>", 1),
            ("<a b\u{7f}c='1'/>", 1),
            ("<a>\n\n\u{1b}</a>", 3),
        ] {
            let err = Element::parse(doc).unwrap_err();
            assert_eq!(err.line, line, "{doc:?}: {err:?}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(Element::parse(&deep).is_err());
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(Element::parse(&ok).is_ok());
    }

    #[test]
    fn attribute_editing() {
        let mut e = Element::new("x").with_attr("a", "1");
        e.set_attr("a", "2");
        e.set_attr("b", "3");
        assert_eq!(e.remove_attr("a").as_deref(), Some("2"));
        assert_eq!(e.format(), "<x b='3'/>\n");
    }
}
