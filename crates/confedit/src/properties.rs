//! Java `.properties` files edited in place: a key's value is replaced, every other byte stays.
//! Files are ISO-8859-1 (as Java reads them): characters outside it are written as `\uXXXX`.

/// A properties file decoded from ISO-8859-1 bytes.
#[derive(Debug, Clone)]
pub struct Properties {
    text: String,
}

/// One value changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyChange {
    /// The key.
    pub key: String,
    /// The value before; `None` when the key was added.
    pub old: Option<String>,
    /// The value set.
    pub new: String,
}

impl Properties {
    /// Decodes ISO-8859-1 bytes (every byte is a character).
    pub fn from_bytes(bytes: &[u8]) -> Properties {
        Properties {
            text: bytes.iter().map(|b| char::from(*b)).collect(),
        }
    }

    /// Encodes back to ISO-8859-1 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Every char came from a byte or from `escape`, which emits only ASCII.
        self.text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect()
    }

    /// The byte range of `key`'s value, and the value as written (continuations not joined).
    fn find(&self, key: &str) -> Option<(usize, usize)> {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let trimmed = line.trim_start();
            if trimmed.starts_with('#') || trimmed.starts_with('!') {
                continue;
            }
            let lead = line.len() - trimmed.len();
            let Some(sep) = trimmed.find(['=', ':']) else {
                continue;
            };
            if trimmed[..sep].trim_end() != key {
                continue;
            }
            let after = &trimmed[sep + 1..];
            let value_start = start
                + lead
                + sep
                + 1
                + (after.len() - after.trim_start_matches([' ', '\t']).len());
            let value_end = start + line.trim_end_matches(['\n', '\r']).len();
            return Some((value_start, value_end.max(value_start)));
        }
        None
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).map(|(a, b)| &self.text[a..b])
    }

    /// Sets `key` to `value` (escaped); appends `key=value` when absent. Returns the change, if any.
    pub fn set(&mut self, key: &str, value: &str) -> Option<PropertyChange> {
        let escaped = escape(value);
        match self.find(key) {
            Some((a, b)) if self.text[a..b] == escaped => None,
            Some((a, b)) => {
                let old = self.text[a..b].to_string();
                self.text.replace_range(a..b, &escaped);
                Some(PropertyChange {
                    key: key.into(),
                    old: Some(old),
                    new: escaped,
                })
            }
            None => {
                if !self.text.is_empty() && !self.text.ends_with('\n') {
                    self.text.push('\n');
                }
                self.text.push_str(&format!("{key}={escaped}\n"));
                Some(PropertyChange {
                    key: key.into(),
                    old: None,
                    new: escaped,
                })
            }
        }
    }
}

/// Escapes a value for a properties file: backslashes, and anything outside printable
/// ISO-8859-1 as `\uXXXX`.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_value() {
        let src = b"# comment\nconnectionfactory.TopicConnectionFactory = amqp://admin:admin@clientid/carbon?brokerlist='tcp://localhost:5672'\r\ntopic.throttleData = throttleData\n";
        let mut p = Properties::from_bytes(src);
        let change = p
            .set("connectionfactory.TopicConnectionFactory", "amqp://x@y")
            .expect("changed");
        assert_eq!(
            change.old.as_deref(),
            Some("amqp://admin:admin@clientid/carbon?brokerlist='tcp://localhost:5672'")
        );
        assert_eq!(
            p.to_bytes(),
            b"# comment\nconnectionfactory.TopicConnectionFactory = amqp://x@y\r\ntopic.throttleData = throttleData\n".to_vec()
        );
        assert_eq!(p.set("topic.throttleData", "throttleData"), None);
    }

    #[test]
    fn appends_missing_keys_and_escapes() {
        let mut p = Properties::from_bytes(b"a=b");
        p.set("pw", "p\u{e4}ss\u{20ac}\\");
        assert_eq!(p.to_bytes(), b"a=b\npw=p\\u00E4ss\\u20AC\\\\\n".to_vec());
    }

    #[test]
    fn latin1_bytes_survive() {
        let src = [b'#', 0xe9, b'\n', b'k', b'=', b'v', b'\n'];
        let p = Properties::from_bytes(&src);
        assert_eq!(p.to_bytes(), src.to_vec());
        assert_eq!(p.get("k"), Some("v"));
    }
}
