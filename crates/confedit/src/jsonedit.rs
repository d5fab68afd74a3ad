//! Editing string values inside a JSON object in place (the jaggery apps' site.json), keeping
//! every other byte.

/// Finds the byte range of the object that is the value of `key` (first occurrence).
fn object_range(text: &str, key: &str) -> Option<(usize, usize)> {
    let needle = format!("\"{key}\"");
    let at = text.find(&needle)? + needle.len();
    let open = at + text[at..].find('{')?;
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((open, i + 1));
                }
            }
            _ => {}
        }
    }
    None
}

/// The byte range of the string literal (quotes included) that is `key`'s value in `range`.
fn string_value(text: &str, range: (usize, usize), key: &str) -> Option<(usize, usize)> {
    let inner = &text[range.0..range.1];
    let needle = format!("\"{key}\"");
    let at = inner.find(&needle)? + needle.len();
    let rest = &inner[at..];
    let colon = rest.find(':')?;
    if !rest[..colon].trim().is_empty() {
        return None;
    }
    let after = &rest[colon + 1..];
    let start = colon + 1 + (after.len() - after.trim_start().len());
    if !rest[start..].starts_with('"') {
        return None;
    }
    let mut escaped = false;
    for (i, c) in rest[start + 1..].char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => {
                let s = range.0 + at + start;
                return Some((s, s + i + 2));
            }
            _ => {}
        }
    }
    None
}

/// What [`set_string`] did not find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonEditError {
    /// No such object.
    #[error("no `{object}` object")]
    NoObject {
        /// The object's name.
        object: String,
    },
    /// The object has no such string member.
    #[error("no string `{object}.{key}`")]
    NoString {
        /// The object's name.
        object: String,
        /// The member's name.
        key: String,
    },
}

/// Sets `object.key` to the string `value`. `Ok(None)` when it already has that value, `Err`
/// naming what is missing.
pub fn set_string(
    text: &mut String,
    object: &str,
    key: &str,
    value: &str,
) -> Result<Option<String>, JsonEditError> {
    let range = object_range(text, object).ok_or_else(|| JsonEditError::NoObject {
        object: object.into(),
    })?;
    let (a, b) = string_value(text, range, key).ok_or_else(|| JsonEditError::NoString {
        object: object.into(),
        key: key.into(),
    })?;
    let new = serde_json::Value::String(value.to_string()).to_string();
    if text[a..b] == new {
        return Ok(None);
    }
    let old = serde_json::from_str::<String>(&text[a..b]).unwrap_or_default();
    text.replace_range(a..b, &new);
    Ok(Some(old))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_values_in_place() {
        let mut text = String::from("{\n  \"a\": {\"keyStoreName\": \"x\"},\n  \"ssoConfiguration\" : {\n    \"enabled\" : false,\n    \"keyStoreName\" :\"wso2carbon.jks\", // c\n    \"keyStorePassword\" : \"wso2carbon\"\n  }\n}\n");
        let old = set_string(
            &mut text,
            "ssoConfiguration",
            "keyStoreName",
            "wso2carbon.p12",
        )
        .expect("set");
        assert_eq!(old.as_deref(), Some("wso2carbon.jks"));
        set_string(&mut text, "ssoConfiguration", "keyStorePassword", "p\"w").expect("set");
        assert_eq!(text, "{\n  \"a\": {\"keyStoreName\": \"x\"},\n  \"ssoConfiguration\" : {\n    \"enabled\" : false,\n    \"keyStoreName\" :\"wso2carbon.p12\", // c\n    \"keyStorePassword\" : \"p\\\"w\"\n  }\n}\n");
        assert_eq!(
            set_string(
                &mut text,
                "ssoConfiguration",
                "keyStoreName",
                "wso2carbon.p12"
            ),
            Ok(None)
        );
        assert!(set_string(&mut text, "ssoConfiguration", "identityAlias", "x").is_err());
    }
}
