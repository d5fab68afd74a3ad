//! The keystore formats apim-pki writes and reads: one enum for the topology's `format`, the
//! file extension, the Java type name and what a file's first bytes say it is. Knows nothing of
//! topologies or files.

/// How keystores are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum KeystoreFormat {
    /// Sun's JKS, read by every JDK.
    Jks,
    /// PKCS#12 with PBES2/AES-256 and HmacSHA256, as keytool 17 writes it.
    Pkcs12,
    /// PKCS#12 with PBE-SHA1-3DES and HmacSHA1, for JDKs before 8u301 / 11.0.12.
    Pkcs12Legacy,
}

impl KeystoreFormat {
    /// Every format, in the order users see them.
    pub const ALL: [KeystoreFormat; 3] = [
        KeystoreFormat::Jks,
        KeystoreFormat::Pkcs12,
        KeystoreFormat::Pkcs12Legacy,
    ];

    /// The name used in topology files.
    pub fn as_str(self) -> &'static str {
        match self {
            KeystoreFormat::Jks => "jks",
            KeystoreFormat::Pkcs12 => "pkcs12",
            KeystoreFormat::Pkcs12Legacy => "pkcs12-legacy",
        }
    }

    /// Parses a format name.
    pub fn parse(text: &str) -> Option<KeystoreFormat> {
        KeystoreFormat::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The file extension of keystores in this format.
    pub fn extension(self) -> &'static str {
        match self {
            KeystoreFormat::Jks => "jks",
            KeystoreFormat::Pkcs12 | KeystoreFormat::Pkcs12Legacy => "p12",
        }
    }

    /// The keystore type name Java and WSO2's configuration use.
    pub fn java_type(self) -> &'static str {
        match self {
            KeystoreFormat::Jks => "JKS",
            KeystoreFormat::Pkcs12 | KeystoreFormat::Pkcs12Legacy => "PKCS12",
        }
    }
    /// The container a keystore of this format is: JKS or PKCS#12 (the legacy PKCS#12 is a
    /// PKCS#12 file with older algorithms). What [`KeystoreFormat::detect`] reports.
    pub fn container(self) -> KeystoreFormat {
        match self {
            KeystoreFormat::Jks => KeystoreFormat::Jks,
            KeystoreFormat::Pkcs12 | KeystoreFormat::Pkcs12Legacy => KeystoreFormat::Pkcs12,
        }
    }

    /// The container of keystore `bytes`, told by their first bytes: `Jks` (FE ED FE ED) or
    /// `Pkcs12` (a DER SEQUENCE, whichever its algorithms); `None` for anything else.
    pub fn detect(bytes: &[u8]) -> Option<KeystoreFormat> {
        if super::jks::is_jks(bytes) {
            Some(KeystoreFormat::Jks)
        } else if bytes.first() == Some(&0x30) {
            Some(KeystoreFormat::Pkcs12)
        } else {
            None
        }
    }
}

impl std::fmt::Display for KeystoreFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_names_its_container_extension_and_java_type() {
        for f in KeystoreFormat::ALL {
            assert_eq!(KeystoreFormat::parse(f.as_str()), Some(f));
            assert_eq!(f.container().java_type(), f.java_type());
            assert_eq!(f.container().extension(), f.extension());
        }
        assert_eq!(
            KeystoreFormat::Pkcs12Legacy.container(),
            KeystoreFormat::Pkcs12
        );
        assert_eq!(
            KeystoreFormat::detect(&[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]),
            Some(KeystoreFormat::Jks)
        );
        assert_eq!(
            KeystoreFormat::detect(&[0x30, 0x82]),
            Some(KeystoreFormat::Pkcs12)
        );
        assert_eq!(KeystoreFormat::detect(b"-----BEGIN"), None);
    }
}
