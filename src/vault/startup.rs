//! How the vault key's password reaches the JVM at start-up: the files Carbon's
//! `DefaultSecretCallbackHandler` reads from the product home (every release here), in order:
//! `password` (renamed to `password-tmp` after reading), `password-tmp` (overwritten and deleted
//! after reading), `password-persist` (kept); else a console prompt, which a daemon or container
//! start does not have. The first line is the keystore password and, unless the JVM runs with
//! `-Dkey.password=true`, also the key password (apim-pki keeps them equal).

use zeroize::Zeroizing;

/// Which file WSO2 reads the password from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordFile {
    /// `password-tmp`: read once, then overwritten and deleted by the server (unless
    /// `-Dpersist.password=true`). For a start with an operator or a deployment tool at hand.
    Tmp,
    /// `password-persist`: read at every start and kept. For unattended restarts; the file is
    /// the key to the vault, so it must stay 0600 and owned by the server's user.
    Persist,
}

impl PasswordFile {
    /// Every choice, as the topology names them.
    pub const ALL: [PasswordFile; 2] = [PasswordFile::Tmp, PasswordFile::Persist];

    /// The topology name (`password_file = "tmp" | "persist"`).
    pub fn name(self) -> &'static str {
        match self {
            PasswordFile::Tmp => "tmp",
            PasswordFile::Persist => "persist",
        }
    }

    /// The choice named `name` in the topology.
    pub fn parse(name: &str) -> Option<PasswordFile> {
        PasswordFile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The file name in the product home (`.txt` on Windows, as the handler checks `os.name`).
    pub fn file_name(self, windows: bool) -> &'static str {
        match (self, windows) {
            (PasswordFile::Tmp, false) => "password-tmp",
            (PasswordFile::Tmp, true) => "password-tmp.txt",
            (PasswordFile::Persist, false) => "password-persist",
            (PasswordFile::Persist, true) => "password-persist.txt",
        }
    }

    /// The file's contents: the password on the first line (the handler uses `readLine`, so
    /// the newline is not part of it). A password with a line break cannot be given this way.
    pub fn contents(self, password: &str) -> Option<Zeroizing<String>> {
        if password.contains(['\n', '\r']) {
            return None;
        }
        Some(Zeroizing::new(format!("{password}\n")))
    }
}

/// The comment node.toml carries above its start command: how this start gets the vault key's
/// password (docs/secure-vault.md, "Start-up password").
pub(crate) fn node_toml_comment(settings: &crate::topology::SecureVaultSettings) -> String {
    if !settings.enabled {
        return String::new();
    }
    let how = match settings.password_file {
        None => "give it at the console prompt, or write password-persist (0600) from your secret store\n# before a daemon or container start (no console there: without it nothing decrypts)",
        Some(PasswordFile::Tmp) => "apply writes password-tmp (0600); the server deletes it after reading,\n# so run apply (or write it) again before each restart",
        Some(PasswordFile::Persist) => "apply writes password-persist (0600), read at every start",
    };
    format!(
        "# Secure vault ({}): the server needs the primary keystore password at start-up:\n# {how}.\n# A manual ciphertool.sh run needs -Dorg.wso2.CipherTransformation={}.\n",
        settings.scheme.name(),
        settings.scheme.transformation()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_contents() {
        assert_eq!(PasswordFile::Tmp.file_name(false), "password-tmp");
        assert_eq!(
            PasswordFile::Persist.file_name(true),
            "password-persist.txt"
        );
        assert_eq!(
            PasswordFile::Tmp.contents("abc123").unwrap().as_str(),
            "abc123\n"
        );
        assert!(PasswordFile::Persist.contents("a\nb").is_none());
    }
}
