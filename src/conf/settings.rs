//! libvirt's configuration file syntax (`qemu.conf`): `name = value` entries, `#`
//! comments, and values that are strings (in single or double quotes), integers, or
//! lists `[ value, ... ]` that may span lines. Errors are libvirt's: a syntax error is
//! `VIR_ERR_CONF_SYNTAX` naming the file and line; a value of the wrong type is
//! `VIR_ERR_INTERNAL_ERROR` naming the file and setting.

use crate::error::{Code, Domain, Error, Result};

/// A value of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    String(String),
    Int(i64),
    List(Vec<Value>),
}

/// A parsed configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// The file's name, for messages.
    file: String,
    entries: Vec<(String, Value)>,
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
    file: &'a str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::new(Domain::VIR_FROM_CONF, Code::VIR_ERR_CONF_SYNTAX, format!("{}:{}: {what}", self.file, self.line))
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// Skips blanks, and with `lines` also newlines and comments.
    fn skip(&mut self, lines: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.at += 1,
                b'\n' if lines => {
                    self.line += 1;
                    self.at += 1;
                }
                b'#' if lines => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.at += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn name(&mut self) -> Result<String> {
        let start = self.at;
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') {
            return Err(self.error("expecting a name"));
        }
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.')) {
            self.at += 1;
        }
        Ok(String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
    }

    fn value(&mut self) -> Result<Value> {
        match self.peek() {
            Some(quote @ (b'"' | b'\'')) => {
                self.at += 1;
                let start = self.at;
                while self.peek().is_some_and(|c| c != quote && c != b'\n') {
                    self.at += 1;
                }
                if self.peek() != Some(quote) {
                    return Err(self.error("unterminated string"));
                }
                let text = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
                self.at += 1;
                Ok(Value::String(text))
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip(true);
                    if self.peek() == Some(b']') {
                        self.at += 1;
                        return Ok(Value::List(items));
                    }
                    items.push(self.value()?);
                    self.skip(true);
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {}
                        _ => return Err(self.error("expecting a separator in list")),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let start = self.at;
                self.at += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.text[start..self.at]).unwrap_or_default();
                text.parse().map(Value::Int).map_err(|_| self.error("unterminated number"))
            }
            _ => Err(self.error("expecting a value")),
        }
    }
}

impl Settings {
    /// Parses the text of `file`.
    pub fn parse(text: &str, file: &str) -> Result<Settings> {
        let mut parser = Parser { text: text.as_bytes(), at: 0, line: 1, file };
        let mut entries = Vec::new();
        loop {
            parser.skip(true);
            if parser.peek().is_none() {
                break;
            }
            let name = parser.name()?;
            parser.skip(false);
            if parser.peek() != Some(b'=') {
                return Err(parser.error("expecting an assignment"));
            }
            parser.at += 1;
            parser.skip(false);
            let value = parser.value()?;
            parser.skip(false);
            match parser.peek() {
                None | Some(b'\n' | b'#') => {}
                Some(b';') => parser.at += 1,
                _ => return Err(parser.error("expecting a separator")),
            }
            entries.push((name, value));
        }
        Ok(Settings { file: file.to_string(), entries })
    }

    fn get(&self, name: &str) -> Option<&Value> {
        // As in libvirt, a later entry of the same name wins.
        self.entries.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn type_error(&self, what: &str, name: &str) -> Error {
        Error::internal(Domain::VIR_FROM_CONF, format!("{}: expected {what} for '{name}' parameter", self.file))
    }

    /// A string setting, if given.
    pub fn string(&self, name: &str) -> Result<Option<&str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.type_error("a string", name)),
        }
    }

    /// A boolean setting (0 or 1), if given.
    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Int(0)) => Ok(Some(false)),
            Some(Value::Int(1)) => Ok(Some(true)),
            Some(Value::Int(_)) => Err(Error::internal(
                Domain::VIR_FROM_CONF,
                format!("{}: value for '{name}' parameter must be 0 or 1", self.file),
            )),
            Some(_) => Err(self.type_error("a bool", name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_comments_lists_and_types() {
        let text = "# qemu.conf\n\
                    backup_tls_x509_cert_dir = \"/etc/pki/backup\"  # where\n\
                    backup_tls_x509_verify = 0\n\
                    security_driver = [ \"selinux\",\n  'dac' ]\n\
                    nbd_tls=1; vnc_listen='::'\n\
                    backup_tls_x509_verify = 1\n";
        let settings = Settings::parse(text, "qemu.conf").unwrap();
        assert_eq!(settings.string("backup_tls_x509_cert_dir").unwrap(), Some("/etc/pki/backup"));
        assert_eq!(settings.bool("backup_tls_x509_verify").unwrap(), Some(true), "the last entry wins");
        assert_eq!(settings.bool("nbd_tls").unwrap(), Some(true));
        assert_eq!(settings.string("vnc_listen").unwrap(), Some("::"));
        assert_eq!(settings.string("missing").unwrap(), None);
        assert_eq!(
            settings.get("security_driver"),
            Some(&Value::List(vec![Value::String("selinux".into()), Value::String("dac".into())]))
        );
        let e = settings.string("nbd_tls").unwrap_err();
        assert_eq!((e.code, e.domain), (Code::VIR_ERR_INTERNAL_ERROR, Domain::VIR_FROM_CONF));
        assert_eq!(e.message, "internal error: qemu.conf: expected a string for 'nbd_tls' parameter");
        let e = Settings::parse("x = 2", "f").unwrap().bool("x").unwrap_err();
        assert_eq!(e.message, "internal error: f: value for 'x' parameter must be 0 or 1");
        assert!(Settings::parse("", "f").unwrap().entries.is_empty());
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        for (text, line, what) in [
            ("a = 1\nb = \n", 2, "expecting a value"),
            ("a = \"open\n", 1, "unterminated string"),
            ("\n\n= 3", 3, "expecting a name"),
            ("a 3", 1, "expecting an assignment"),
            ("a = 1 2", 1, "expecting a separator"),
            ("a = [1 2]", 1, "expecting a separator in list"),
        ] {
            let e = Settings::parse(text, "/r/etc/qemu.conf").unwrap_err();
            assert_eq!((e.code, e.domain), (Code::VIR_ERR_CONF_SYNTAX, Domain::VIR_FROM_CONF), "{text:?}");
            assert_eq!(
                e.message,
                format!("configuration file syntax error: /r/etc/qemu.conf:{line}: {what}"),
                "{text:?}"
            );
        }
    }
}
