//! Connection URIs (`scheme://[server]/path[?query]`), split the way libvirt's driver
//! selection needs them.

#![forbid(unsafe_code)]

/// A parsed connection URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: String,
    /// The server part, when the URI names a remote host.
    pub server: Option<String>,
    /// The path, `/` included (`/default`, `/embed`); empty when absent.
    pub path: String,
    /// Query parameters, percent-decoded, in order.
    pub params: Vec<(String, String)>,
}

impl Uri {
    /// Splits a URI; `None` when it has no `scheme:` part.
    pub fn parse(text: &str) -> Option<Uri> {
        let (scheme, rest) = text.split_once(':')?;
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            return None;
        }
        let (hier, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let (server, path) = match hier.strip_prefix("//") {
            Some(after) => match after.find('/') {
                Some(at) => (&after[..at], &after[at..]),
                None => (after, ""),
            },
            None => ("", hier),
        };
        let params = query
            .map(|q| {
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (percent_decode(k), percent_decode(v))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Uri {
            scheme: scheme.to_string(),
            server: (!server.is_empty()).then(|| server.to_string()),
            path: percent_decode(path),
            params,
        })
    }

    /// The last value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Decodes `%XX` escapes (and `+` is kept literally, as in a URI path). Invalid escapes
/// are kept as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_parts() {
        let u = Uri::parse("qemu:///embed?root=/tmp/a%20b&x=1").unwrap();
        assert_eq!((u.scheme.as_str(), u.server.as_deref(), u.path.as_str()), ("qemu", None, "/embed"));
        assert_eq!(u.param("root"), Some("/tmp/a b"));
        assert_eq!(u.param("x"), Some("1"));
        let u = Uri::parse("test://host/default").unwrap();
        assert_eq!(u.server.as_deref(), Some("host"));
        let u = Uri::parse("test:///default").unwrap();
        assert_eq!((u.server, u.path.as_str()), (None, "/default"));
    }

    #[test]
    fn refuses_text_without_a_scheme() {
        assert_eq!(Uri::parse("bogus"), None);
        assert_eq!(Uri::parse(":///x"), None);
        assert_eq!(Uri::parse("a b:///x"), None);
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
        assert_eq!(percent_decode("%"), "%");
    }
}
