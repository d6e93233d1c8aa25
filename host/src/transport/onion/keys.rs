//! A tab's onion service keys: its identity (its address) and its client authorization key,
//! kept in memory only, or in a private key directory for a persistent tab.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rand::TryRngCore as _;
use safelog::DisplayRedacted as _;
use tor_hscrypto::pk::{HsClientDescEncKey, HsClientDescEncSecretKey, HsId, HsIdKey, HsIdKeypair};
use tor_llcrypto::pk::{curve25519, ed25519};
use zeroize::Zeroizing;

/// The header of C tor's `hs_ed25519_secret_key` file. The same format, so that a user can
/// move a persistent tab's address to C tor (or back) by copying one file.
const SECRET_KEY_HEADER: &[u8; 32] = b"== ed25519v1-secret: type0 ==\0\0\0";

/// File name of the identity key in a persistent tab's key directory.
const IDENTITY_FILE: &str = "hs_ed25519_secret_key";

/// File name of the client authorization key in a persistent tab's key directory.
const CLIENT_FILE: &str = "client_x25519_secret_key";

/// A tab's keys. Its `Debug` shows no secret.
pub(crate) struct TabKeys {
    /// The expanded ed25519 identity secret (`(a, r)`, as C tor stores it).
    identity: Zeroizing<[u8; 64]>,
    /// The x25519 secret of the client key the host prints for visitors (private tabs).
    client: Option<Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for TabKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TabKeys { .. }")
    }
}

/// 32 bytes from the operating system's random source.
fn random_32() -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut *bytes)
        .context("the operating system's random number source failed")?;
    Ok(bytes)
}

/// A fresh expanded ed25519 identity secret.
fn new_identity() -> anyhow::Result<Zeroizing<[u8; 64]>> {
    let seed = random_32()?;
    let keypair = ed25519::Keypair::from_bytes(&seed);
    Ok(Zeroizing::new(
        ed25519::ExpandedKeypair::from(&keypair).to_secret_key_bytes(),
    ))
}

impl TabKeys {
    /// Fresh keys that live in memory only. `client` asks for a client authorization key.
    pub(crate) fn generate(client: bool) -> anyhow::Result<Self> {
        Ok(Self {
            identity: new_identity()?,
            client: if client { Some(random_32()?) } else { None },
        })
    }

    /// The keys kept in `dir` (created private if missing), generating whatever is missing.
    /// A public tab leaves a client key that is already there, for when it is private again.
    pub(crate) fn load_or_create(dir: &Path, private: bool) -> anyhow::Result<Self> {
        private_dir(dir)?;
        let identity_path = dir.join(IDENTITY_FILE);
        let identity = match read_private(&identity_path)? {
            Some(bytes) => {
                let secret = bytes
                    .strip_prefix(SECRET_KEY_HEADER.as_slice())
                    .and_then(|rest| <[u8; 64]>::try_from(rest).ok())
                    .with_context(|| {
                        format!(
                            "{} is not an onion service identity key: move it away to start this tab with a new address",
                            identity_path.display()
                        )
                    })?;
                let secret = Zeroizing::new(secret);
                if ed25519::ExpandedKeypair::from_secret_key_bytes(*secret).is_none() {
                    bail!(
                        "{} holds an invalid identity key: move it away to start this tab with a new address",
                        identity_path.display()
                    );
                }
                secret
            }
            None => {
                let secret = new_identity()?;
                let mut file = Zeroizing::new(SECRET_KEY_HEADER.to_vec());
                file.extend_from_slice(&*secret);
                write_private(&identity_path, &file)?;
                secret
            }
        };
        let client_path = dir.join(CLIENT_FILE);
        let client = match read_private(&client_path)? {
            Some(text) => {
                let text = Zeroizing::new(text);
                let decoded = std::str::from_utf8(&text)
                    .ok()
                    .and_then(|text| {
                        data_encoding::BASE32_NOPAD
                            .decode(text.trim().to_ascii_uppercase().as_bytes())
                            .ok()
                    })
                    .map(Zeroizing::new)
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
                    .with_context(|| {
                        format!(
                            "{} is not a client key: move it away to make a new one (visitors then need the new key)",
                            client_path.display()
                        )
                    })?;
                Some(Zeroizing::new(decoded))
            }
            None if private => {
                let secret = random_32()?;
                let text = Zeroizing::new(format!(
                    "{}\n",
                    data_encoding::BASE32_NOPAD.encode(&*secret)
                ));
                write_private(&client_path, text.as_bytes())?;
                Some(secret)
            }
            None => None,
        };
        Ok(Self {
            identity,
            client: client.filter(|_| private),
        })
    }

    /// The identity key pair, for Arti.
    pub(crate) fn identity_keypair(&self) -> anyhow::Result<HsIdKeypair> {
        ed25519::ExpandedKeypair::from_secret_key_bytes(*self.identity)
            .map(HsIdKeypair::from)
            .context("the identity key is invalid")
    }

    /// The service's identity.
    pub(crate) fn hs_id(&self) -> anyhow::Result<HsId> {
        Ok(HsIdKey::from(&self.identity_keypair()?).id())
    }

    /// The `<56 base32 characters>.onion` address.
    pub(crate) fn onion_address(&self) -> anyhow::Result<String> {
        Ok(self.hs_id()?.display_unredacted().to_string())
    }

    /// The public half of the client key, as the service lists it.
    pub(crate) fn client_public(&self) -> Option<HsClientDescEncKey> {
        self.client.as_ref().map(|secret| {
            let secret = curve25519::StaticSecret::from(**secret);
            HsClientDescEncKey::from(curve25519::PublicKey::from(&secret))
        })
    }

    /// The secret half of the client key, for the host's own reachability check.
    pub(crate) fn client_secret(&self) -> Option<HsClientDescEncSecretKey> {
        self.client
            .as_ref()
            .map(|secret| HsClientDescEncSecretKey::from(curve25519::StaticSecret::from(**secret)))
    }

    /// The identity key as C tor's ADD_ONION takes it (`ED25519-V3:` + this): the base64 of
    /// the 64-byte expanded secret.
    pub(crate) fn identity_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::BASE64.encode(&*self.identity))
    }

    /// The client private key as Tor Browser and C tor take it: 52 base32 characters.
    pub(crate) fn client_private_base32(&self) -> Option<Zeroizing<String>> {
        self.client
            .as_ref()
            .map(|secret| Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&**secret)))
    }
}

/// The default folder of persistent tabs' keys: `$XDG_DATA_HOME/onionhost/keys`, or
/// `~/.local/share/onionhost/keys`.
pub(crate) fn default_keys_dir() -> anyhow::Result<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
        })
        .context("neither XDG_DATA_HOME nor HOME is set: set `keys_dir` in `[tor]` to keep persistent tabs' keys")?;
    Ok(data.join("onionhost").join("keys"))
}

/// Creates `dir` (and missing parents) readable by the user only, or checks that it is.
pub(crate) fn private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the key folder {}", dir.display()))?;
    let mode = fs::metadata(dir)
        .with_context(|| format!("cannot read the key folder {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "the key folder {} is open to other users (mode {:o}): run `chmod 700 {}`",
            dir.display(),
            mode & 0o777,
            dir.display()
        );
    }
    Ok(())
}

/// Reads a key file, `None` if it does not exist; refuses one that other users can read.
fn read_private(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let mode = match fs::metadata(path) {
        Ok(meta) => meta.permissions().mode(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    if mode & 0o077 != 0 {
        bail!(
            "the key file {} is open to other users (mode {:o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    fs::read(path)
        .map(Some)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a key file readable by the user only, all at once (a crash leaves no half key).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("new");
    let _ = fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write the key file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use super::*;

    #[test]
    fn fresh_keys_give_a_v3_address_and_a_client_key() {
        let keys = TabKeys::generate(true).expect("keys");
        let address = keys.onion_address().expect("address");
        assert_eq!(address.len(), 56 + ".onion".len(), "{address}");
        assert!(
            address.ends_with("d.onion"),
            "v3 addresses end in d: {address}"
        );
        assert_eq!(
            HsId::from_str(&address).expect("parses"),
            keys.hs_id().expect("id")
        );
        let private = keys.client_private_base32().expect("client key");
        assert_eq!(private.len(), 52);
        // The printed private key is the secret of the public key the service lists.
        let secret: [u8; 32] = data_encoding::BASE32_NOPAD
            .decode(private.as_bytes())
            .expect("base32")
            .try_into()
            .expect("32 bytes");
        let public = curve25519::PublicKey::from(&curve25519::StaticSecret::from(secret));
        assert_eq!(keys.client_public(), Some(HsClientDescEncKey::from(public)));
        assert_ne!(
            TabKeys::generate(true)
                .expect("keys")
                .onion_address()
                .expect("address"),
            address
        );
    }

    #[test]
    fn a_public_tab_has_no_client_key() {
        let keys = TabKeys::generate(false).expect("keys");
        assert!(keys.client_public().is_none());
        assert!(keys.client_private_base32().is_none());
    }

    #[test]
    fn debug_shows_no_secret() {
        assert_eq!(
            format!("{:?}", TabKeys::generate(true).expect("keys")),
            "TabKeys { .. }"
        );
    }

    #[test]
    fn persistent_keys_survive_and_are_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("keys/tab");
        let first = TabKeys::load_or_create(&dir, true).expect("create");
        let second = TabKeys::load_or_create(&dir, true).expect("load");
        assert_eq!(first.onion_address().ok(), second.onion_address().ok());
        assert_eq!(
            first.client_private_base32().as_deref().map(String::as_str),
            second
                .client_private_base32()
                .as_deref()
                .map(String::as_str)
        );
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("keys")), 0o700);
        assert_eq!(mode(&dir.join(IDENTITY_FILE)), 0o600);
        assert_eq!(mode(&dir.join(CLIENT_FILE)), 0o600);
        // The identity file is C tor's format.
        let file = fs::read(dir.join(IDENTITY_FILE)).expect("read");
        assert_eq!(file.len(), 96);
        assert!(file.starts_with(SECRET_KEY_HEADER));

        // Public now: same address, no client key in use, but the key file stays.
        let public = TabKeys::load_or_create(&dir, false).expect("load public");
        assert_eq!(public.onion_address().ok(), first.onion_address().ok());
        assert!(public.client_public().is_none());
        assert!(dir.join(CLIENT_FILE).exists());
    }

    #[test]
    fn key_files_open_to_others_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("tab");
        TabKeys::load_or_create(&dir, false).expect("create");
        fs::set_permissions(dir.join(IDENTITY_FILE), fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let err = TabKeys::load_or_create(&dir, false).expect_err("refused");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = TabKeys::load_or_create(&dir, false).expect_err("refused");
        assert!(err.to_string().contains("chmod 700"), "{err}");
    }

    #[test]
    fn a_damaged_key_file_is_an_error_naming_the_file() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("tab");
        private_dir(&dir).expect("dir");
        write_private(&dir.join(IDENTITY_FILE), b"garbage").expect("write");
        let err = format!(
            "{:#}",
            TabKeys::load_or_create(&dir, false).expect_err("refused")
        );
        assert!(
            err.contains(IDENTITY_FILE) && err.contains("move it away"),
            "{err}"
        );
    }
}
