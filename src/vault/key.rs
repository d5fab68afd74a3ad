//! The vault key as apply, generate, rotate and verify hold it: the primary key entry of the
//! set's primary keystore, with the release and scheme the topology chose. Sealing a password
//! reuses a ciphertext that still decrypts to it (RSA encryption is randomised, so this is what
//! makes a re-run change nothing), and re-encrypts otherwise (re-keyed or re-certified primary,
//! changed password, changed scheme).

use zeroize::Zeroizing;

use super::{Release, Scheme, VaultError};
use crate::keystore::{Entry, Keystore};
use crate::topology::Product;

/// The key secure vault encrypts with (the certificate) and decrypts with (the private key).
///
/// Clones share a memo of what was decrypted and encrypted, so a run over many nodes pays one
/// RSA private-key operation per distinct ciphertext and one encryption per distinct password
/// (nodes then share the ciphertext, as copies of one vault would): the cost does not grow with
/// the topology.
#[derive(Clone)]
pub struct VaultKey {
    /// The release whose runtime decrypts.
    pub release: Release,
    /// The encryption scheme.
    pub scheme: Scheme,
    cert_der: Vec<u8>,
    pkcs8: Zeroizing<Vec<u8>>,
    memo: std::sync::Arc<std::sync::Mutex<Memo>>,
}

/// Plaintexts by (scheme, ciphertext), and ciphertexts by (scheme, password).
#[derive(Default)]
struct Memo {
    opened: Vec<(Scheme, String, Zeroizing<String>)>,
    sealed: Vec<(Scheme, Zeroizing<String>, String)>,
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VaultKey({:?}, {:?}, key [elided])",
            self.release, self.scheme
        )
    }
}

/// The release whose cipher tool and runtime `product` ships (4.0-4.4 encrypt alike; 4.5+ as
/// 4.6).
pub fn release_of(product: Product) -> Release {
    match product {
        Product::Apim26 => Release::Apim26,
        Product::Apim32 => Release::Apim32,
        Product::Apim4x => Release::Apim44,
        Product::Apim45 => Release::Apim46,
    }
}

/// What a stored ciphertext turned out to be, for reports and findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealed {
    /// The existing ciphertext decrypts to the password: kept as it is.
    Kept(String),
    /// A new ciphertext (none existed, it was plain, or it held something else).
    Fresh(String),
}

impl Sealed {
    /// The ciphertext to write.
    pub fn text(&self) -> &str {
        match self {
            Sealed::Kept(t) | Sealed::Fresh(t) => t,
        }
    }
}

impl VaultKey {
    /// The key entry `alias` of `keystore` (the primary keystore, opened).
    pub fn from_keystore(
        keystore: &Keystore,
        alias: &str,
        release: Release,
        scheme: Scheme,
    ) -> Result<VaultKey, VaultError> {
        match keystore.entry(alias) {
            Some(Entry::PrivateKey { pkcs8, chain, .. }) if !chain.is_empty() => Ok(VaultKey {
                release,
                scheme,
                cert_der: chain[0].clone(),
                pkcs8: pkcs8.clone(),
                memo: Default::default(),
            }),
            _ => Err(VaultError::BadKey {
                what: "primary keystore entry",
                reason: format!("the keystore has no key entry `{alias}`"),
            }),
        }
    }

    /// The same key, decrypting and encrypting with `scheme` (what a home's
    /// `secret-conf.properties` tells the runtime).
    pub fn with_scheme(mut self, scheme: Scheme) -> VaultKey {
        self.scheme = scheme;
        self
    }

    /// Decrypts `ciphertext` as the runtime does with this key and scheme.
    pub fn open(&self, ciphertext: &str) -> Result<Zeroizing<String>, VaultError> {
        let memo = || self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, p)) = memo()
            .opened
            .iter()
            .find(|(s, c, _)| *s == self.scheme && c == ciphertext)
        {
            return Ok(p.clone());
        }
        let plain = super::decrypt(self.scheme, &self.pkcs8, ciphertext)?;
        memo()
            .opened
            .push((self.scheme, ciphertext.to_string(), plain.clone()));
        Ok(plain)
    }

    /// Decrypts `ciphertext` with this key under any scheme the release's runtime knows (this
    /// key's first): what a value encrypted earlier with the other padding holds.
    pub fn open_any_scheme(&self, ciphertext: &str) -> Option<Zeroizing<String>> {
        std::iter::once(self.scheme)
            .chain(self.release.schemes().iter().copied())
            .find_map(|s| self.clone().with_scheme(s).open(ciphertext).ok())
    }

    /// `existing` when it decrypts to `password` under this key and scheme, else a fresh
    /// ciphertext of `password`.
    pub fn seal(&self, existing: Option<&str>, password: &str) -> Result<Sealed, VaultError> {
        if let Some(old) = existing.map(str::trim).filter(|s| !s.is_empty()) {
            if self.open(old).is_ok_and(|p| p.as_str() == password) {
                return Ok(Sealed::Kept(old.to_string()));
            }
        }
        let memo = || self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, c)) = memo()
            .sealed
            .iter()
            .find(|(s, p, _)| *s == self.scheme && p.as_str() == password)
        {
            return Ok(Sealed::Fresh(c.clone()));
        }
        let c = super::encrypt(self.release, self.scheme, &self.cert_der, password)?;
        memo().sealed.push((
            self.scheme,
            Zeroizing::new(password.to_string()),
            c.text.clone(),
        ));
        Ok(Sealed::Fresh(c.text))
    }
}

/// Why a node's vault key cannot be had; never a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultKeyError {
    /// The inventory names a scheme this version does not know.
    #[error("inventory.json names an unknown vault scheme `{0}`")]
    UnknownScheme(String),
    /// The node's primary keystore cannot be read.
    #[error("{rel}: cannot read: {source}")]
    Unreadable {
        /// The keystore, relative to DIR.
        rel: String,
        /// Why (quoted: the message is also a finding's text).
        source: std::io::Error,
    },
    /// The set records no primary password.
    #[error("the set records no primary password")]
    NoPassword,
    /// The keystore does not open.
    #[error("{rel}: {source}")]
    Keystore {
        /// The keystore, relative to DIR.
        rel: String,
        /// Why (quoted).
        source: crate::keystore::KeystoreError,
    },
    /// The keystore holds no usable vault key.
    #[error("{rel}: {source}")]
    Key {
        /// The keystore, relative to DIR.
        rel: String,
        /// Why (quoted).
        source: VaultError,
    },
}

/// The vault key of `node` in `set` (its copy of the primary keystore, opened with the set's
/// primary password), or `None` when the set's vault is off. Errors say what is wrong in words
/// fit for a report (never a password).
pub fn for_set_node(
    set: &crate::set::OpenedSet,
    node: &str,
) -> Result<Option<VaultKey>, VaultKeyError> {
    use crate::output::layout;
    let sv = &set.view.secure_vault;
    if !sv.enabled {
        return Ok(None);
    }
    let scheme =
        Scheme::parse(&sv.scheme).ok_or_else(|| VaultKeyError::UnknownScheme(sv.scheme.clone()))?;
    let product = set.inventory.product;
    let format = set.view.keystores.format;
    let rel = layout::node_security(node, &layout::primary_file(format));
    let bytes = crate::input::read(set.dir.join(&rel), crate::input::Limit::Keystore).map_err(
        |source| VaultKeyError::Unreadable {
            rel: rel.clone(),
            source,
        },
    )?;
    let password = set
        .password(crate::password::PasswordRole::Primary)
        .ok_or(VaultKeyError::NoPassword)?;
    let (store, _) =
        Keystore::decode(&bytes, password).map_err(|source| VaultKeyError::Keystore {
            rel: rel.clone(),
            source,
        })?;
    VaultKey::from_keystore(
        &store,
        &set.view.keystores.primary_alias,
        release_of(product),
        scheme,
    )
    .map(Some)
    .map_err(|source| VaultKeyError::Key { rel, source })
}

/// A fresh RSA primary keystore's vault key (API-M 4.4), for unit tests.
#[cfg(test)]
pub(crate) fn test_key(scheme: Scheme) -> VaultKey {
    use crate::pki::{self, CertSpec, Key, Role};
    let key = Key::generate(crate::topology::KeyType::Rsa2048).expect("key");
    let spec = CertSpec {
        subject: pki::Subject {
            common_name: "vault key test".into(),
            organization: None,
            organizational_unit: None,
            country: None,
        },
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        role: Role::Primary,
        validity_days: 30,
    };
    let cert = pki::self_signed(&spec, &key).expect("cert");
    let store = Keystore {
        entries: vec![Entry::PrivateKey {
            alias: "wso2carbon".into(),
            pkcs8: key.pkcs8_der(),
            chain: vec![cert],
        }],
    };
    VaultKey::from_keystore(&store, "wso2carbon", Release::Apim44, scheme).expect("key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scheme: Scheme) -> VaultKey {
        test_key(scheme)
    }

    #[test]
    fn seal_keeps_what_still_decrypts_and_replaces_the_rest() {
        let k = key(Scheme::RsaOaepSha1);
        let first = k.seal(None, "s3cret").unwrap();
        assert!(matches!(first, Sealed::Fresh(_)));
        assert_eq!(
            k.seal(Some(first.text()), "s3cret").unwrap(),
            Sealed::Kept(first.text().into())
        );
        assert!(matches!(
            k.seal(Some(first.text()), "changed").unwrap(),
            Sealed::Fresh(_)
        ));
        assert!(matches!(
            k.seal(Some("[s3cret]"), "s3cret").unwrap(),
            Sealed::Fresh(_)
        ));
        let other = key(Scheme::RsaOaepSha1);
        let foreign = other.seal(None, "s3cret").unwrap();
        assert!(matches!(
            k.seal(Some(foreign.text()), "s3cret").unwrap(),
            Sealed::Fresh(_)
        ));
        assert!(k.open(foreign.text()).is_err());
    }
}
