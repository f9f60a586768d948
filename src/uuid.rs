//! UUIDs in libvirt's raw (16 bytes) and text (36 characters) forms.

use std::fmt;
use std::io::Read;

/// A 16-byte UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Parses the text form as libvirt accepts it: 32 hex digits, dashes anywhere between
    /// them, optional surrounding whitespace.
    pub fn parse(text: &str) -> Option<Uuid> {
        let mut bytes = [0u8; 16];
        let mut digits = text.trim_start().chars().peekable();
        let mut n = 0;
        while n < 32 {
            let c = digits.next()?;
            if c == '-' {
                continue;
            }
            let v = c.to_digit(16)? as u8;
            bytes[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
            n += 1;
        }
        digits.all(char::is_whitespace).then_some(Uuid(bytes))
    }

    /// A random (version 4) UUID.
    pub fn random() -> std::io::Result<Uuid> {
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Ok(Uuid(bytes))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let u = Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f").unwrap();
        assert_eq!(u.to_string(), "6695eb01-f6a4-8304-79aa-97f2502e193f");
        assert_eq!(Uuid::parse(" 6695eb01f6a4830479aa97f2502e193f \n"), Some(u));
        assert_eq!(Uuid::parse("6695EB01-F6A4-8304-79AA-97F2502E193F"), Some(u));
    }

    #[test]
    fn refuses_bad_text() {
        for bad in [
            "",
            "zz",
            "6695eb01-f6a4-8304-79aa-97f2502e193",
            "6695eb01-f6a4-8304-79aa-97f2502e193f0",
            "6695eb01-f6a4-8304-79aa-97f2502e193g",
        ] {
            assert_eq!(Uuid::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn random_is_version_4() {
        let u = Uuid::random().unwrap();
        assert_eq!(u.0[6] >> 4, 4);
        assert_ne!(u, Uuid::random().unwrap());
    }
}
