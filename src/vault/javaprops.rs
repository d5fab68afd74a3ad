//! `java.util.Properties` text as Java writes (`store`) and reads (`load`) it, for the secure vault
//! files. WSO2's cipher tool writes `cipher-text.properties` and `secret-conf.properties` with
//! `Properties.store`, which escapes `=`, `:`, `#`, `!` (so base64 padding appears as `\=`) and
//! writes non-ASCII as `\uXXXX`; the runtime reads them with `Properties.load`.

/// One `key=value` read from a properties text, with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Escapes a key as `Properties.store` does (spaces escaped everywhere).
pub(crate) fn escape_key(key: &str) -> String {
    escape(key, true)
}

/// Escapes a value as `Properties.store` does (only a leading space escaped).
pub(crate) fn escape_value(value: &str) -> String {
    escape(value, false)
}

fn escape(text: &str, escape_space: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' if i == 0 || escape_space => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// One `key=value` line as `Properties.store` writes it, with a trailing newline.
pub(crate) fn line(key: &str, value: &str) -> String {
    format!("{}={}\n", escape_key(key), escape_value(value))
}

/// A `\uXXXX` escape `Properties.load` refuses (the 4 characters after `\u` are quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadEscape {
    /// Not four hexadecimal digits.
    #[error("malformed \\uxxxx escape \\u{0}")]
    Malformed(String),
    /// A lone surrogate, or a pair that does not make a character.
    #[error("\\u{0} is not a character")]
    NotACharacter(String),
}

/// Parses properties text as `Properties.load` does: `#`/`!` comments, `=`, `:` or whitespace
/// separators, backslash continuations and escapes. Entries keep file order; a repeated key
/// appears twice (Java keeps the last). A malformed `\u` escape is an error naming the line.
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, (usize, BadEscape)> {
    let mut entries = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let start = i + 1;
        let first = lines[i].trim_start_matches([' ', '\t', '\u{c}']);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::from(first);
        while ends_with_odd_backslashes(&logical) && i < lines.len() {
            logical.pop();
            logical.push_str(lines[i].trim_start_matches([' ', '\t', '\u{c}']));
            i += 1;
        }
        if ends_with_odd_backslashes(&logical) {
            logical.pop();
        }
        let (key, value) = split_key_value(&logical);
        entries.push(Entry {
            key: unescape(key).map_err(|e| (start, e))?,
            value: unescape(value).map_err(|e| (start, e))?,
            line: start,
        });
    }
    Ok(entries)
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace, as `LineReader` + `load0` do.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut k = 0;
    let mut escaped = false;
    while k < bytes.len() {
        let b = bytes[k];
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if matches!(b, b'=' | b':' | b' ' | b'\t' | b'\x0c') {
            break;
        }
        k += 1;
    }
    let key = &line[..k];
    let mut rest = line[k..].trim_start_matches([' ', '\t', '\u{c}']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\u{c}']);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, BadEscape> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    let mut pending_high: Option<u16> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        let unit = match e {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\u{c}',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let v = u16::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .ok_or_else(|| BadEscape::Malformed(hex.clone()))?;
                if (0xD800..0xDC00).contains(&v) {
                    pending_high = Some(v);
                    continue;
                }
                let code = match pending_high.take() {
                    Some(h) => char::decode_utf16([h, v]).next().and_then(Result::ok),
                    None => char::from_u32(u32::from(v)),
                };
                code.ok_or(BadEscape::NotACharacter(hex))?
            }
            other => other,
        };
        out.push(unit);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_escapes_like_java() {
        assert_eq!(line("a.b", "QUJD=="), "a.b=QUJD\\=\\=\n");
        assert_eq!(line("k y", " v w"), "k\\ y=\\ v w\n");
        assert_eq!(line("p", "C:\\x#!"), "p=C\\:\\\\x\\#\\!\n");
        assert_eq!(line("p", "é\u{1F600}"), "p=\\u00E9\\uD83D\\uDE00\n");
    }

    #[test]
    fn load_reads_what_store_writes() {
        for (k, v) in [
            ("Carbon.Security.KeyStore.Password", "ab+/cd=="),
            ("k y", " lead"),
            ("p", "C:\\x#!é\u{1F600}"),
        ] {
            let parsed = parse(&line(k, v)).unwrap();
            assert_eq!(parsed.len(), 1);
            assert_eq!((parsed[0].key.as_str(), parsed[0].value.as_str()), (k, v));
        }
    }

    #[test]
    fn load_handles_comments_separators_continuations() {
        let text = "# c\n! c\n\n  a = 1\nb:2\nc 3\nd=x\\\n   y\ne\n#Axis2=x\n";
        let got: Vec<(String, String, usize)> = parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect();
        let want = [
            ("a", "1", 4),
            ("b", "2", 5),
            ("c", "3", 6),
            ("d", "xy", 7),
            ("e", "", 9),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1.as_str(), g.2), w);
        }
    }

    #[test]
    fn bad_unicode_escape_names_the_line() {
        let (line, e) = parse("a=1\nb=\\u00zz\n").unwrap_err();
        assert_eq!(line, 2);
        assert_eq!(e, BadEscape::Malformed("00zz".into()));
        assert_eq!(e.to_string(), "malformed \\uxxxx escape \\u00zz");
        let (_, e) = parse("a=\\uD800\\u0041\n").unwrap_err();
        assert_eq!(e.to_string(), "\\u0041 is not a character");
    }
}
