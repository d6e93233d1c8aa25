//! The host's one Tor client: its configuration from `[tor]` (another network, bridges and
//! pluggable transports) and its private directories. Connecting it is `bootstrap.rs`'s job.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use arti_client::config::dir::{AuthorityContacts, FallbackDir};
use arti_client::config::pt::TransportConfigBuilder;
use arti_client::config::{BridgeConfigBuilder, CfgPath, PtTransportName, TorClientConfigBuilder};
use arti_client::{TorClient, TorClientConfig};
use tor_config::{BoolOrAuto, ExplicitOrAuto};
use tor_keymgr::config::ArtiKeystoreKind;
use tor_llcrypto::pk::ed25519::Ed25519Identity;
use tor_llcrypto::pk::rsa::RsaIdentity;

use super::runtime::OnionRuntime;
use crate::config::{Bridges, TorConfig, TorNetwork};

/// The Tor client every tab's onion service runs on (on the host's runtime: `runtime.rs`).
pub(crate) type Client = Arc<TorClient<OnionRuntime>>;

/// Arti's state and cache directories. Those the user did not configure live in a private
/// temporary directory that is removed when this is dropped.
#[derive(Debug)]
pub(crate) struct TorDirs {
    /// Arti's state directory.
    pub(crate) state: PathBuf,
    /// Arti's cache directory.
    pub(crate) cache: PathBuf,
    /// The temporary directory, if one was needed; held only to be removed on drop.
    _temp: Option<tempfile::TempDir>,
}

impl TorDirs {
    /// Picks the configured directories, and makes a private temporary one for the others.
    pub(crate) fn new(tor: &TorConfig) -> anyhow::Result<Self> {
        let temp = if tor.state_dir.is_none() || tor.cache_dir.is_none() {
            use std::os::unix::fs::PermissionsExt as _;
            let temp = tempfile::Builder::new()
                .prefix("onionhost-tor-")
                .permissions(std::fs::Permissions::from_mode(0o700))
                .tempdir()
                .context("cannot create a private temporary folder for Tor's state")?;
            Some(temp)
        } else {
            None
        };
        let in_temp = |name: &str| -> PathBuf {
            temp.as_ref()
                .map(|t| t.path().join(name))
                .unwrap_or_default()
        };
        Ok(Self {
            state: tor.state_dir.clone().unwrap_or_else(|| in_temp("state")),
            cache: tor.cache_dir.clone().unwrap_or_else(|| in_temp("cache")),
            _temp: temp,
        })
    }

    /// The temporary directory, if any.
    #[cfg(test)]
    pub(crate) fn temp(&self) -> Option<&std::path::Path> {
        self._temp.as_ref().map(tempfile::TempDir::path)
    }
}

/// Arti's configuration for `tor`, with its files in `dirs`.
pub(crate) fn client_config(tor: &TorConfig, dirs: &TorDirs) -> anyhow::Result<TorClientConfig> {
    let mut builder = TorClientConfigBuilder::from_directories(&dirs.state, &dirs.cache);
    // Onion service keys live in memory; persistent tabs keep theirs in their own key folder
    // (see keys.rs), so Arti never writes a key to disk.
    builder
        .storage()
        .keystore()
        .primary()
        .kind(ExplicitOrAuto::Explicit(ArtiKeystoreKind::Ephemeral));
    if let Some(network) = &tor.network {
        use_network(&mut builder, network)?;
    }
    if let Some(bridges) = &tor.bridges {
        use_bridges(&mut builder, bridges)?;
    }
    builder
        .build()
        .context("the Tor client configuration is invalid")
}

/// Points `builder` at a network other than the public Tor network.
fn use_network(builder: &mut TorClientConfigBuilder, network: &TorNetwork) -> anyhow::Result<()> {
    let mut contacts = AuthorityContacts::builder();
    for authority in &network.authorities {
        let id = RsaIdentity::from_bytes(&authority.v3ident)
            .ok_or_else(|| anyhow!("an authority's v3 identity is not 20 bytes"))?;
        contacts.v3idents().push(id);
        contacts.uploads().push(vec![authority.address]);
        contacts.downloads().push(vec![authority.address]);
        contacts.votes().push(vec![authority.address]);
    }
    *builder.tor_network().authorities() = contacts;
    let mut fallbacks = Vec::new();
    for fallback in &network.fallbacks {
        let mut dir = FallbackDir::builder();
        dir.rsa_identity(
            RsaIdentity::from_bytes(&fallback.rsa_identity)
                .ok_or_else(|| anyhow!("a fallback's RSA identity is not 20 bytes"))?,
        )
        .ed_identity(Ed25519Identity::new(fallback.ed_identity));
        dir.orports().push(fallback.orport);
        fallbacks.push(dir);
    }
    builder.tor_network().set_fallback_caches(fallbacks);
    // A private network often runs every relay on one machine or subnet: without these, Arti
    // would refuse to build a path through two relays of one subnet, or to connect to
    // local addresses at all.
    builder
        .path_rules()
        .ipv4_subnet_family_prefix(33)
        .ipv6_subnet_family_prefix(129);
    builder.address_filter().allow_local_addrs(true);
    Ok(())
}

/// Makes Arti reach Tor through `bridges` only: bridges `enabled = true`, not `auto`, so
/// that nothing in Arti can fall back to connecting to a relay directly (with bridges on,
/// Arti takes every first hop, directory fetches included, from the bridges and never uses
/// the fallback directories).
fn use_bridges(builder: &mut TorClientConfigBuilder, bridges: &Bridges) -> anyhow::Result<()> {
    let config = builder.bridges();
    config.enabled(BoolOrAuto::Explicit(true));
    for bridge in &bridges.lines {
        let line: BridgeConfigBuilder = bridge
            .line
            .parse()
            .context("a bridge line that was checked no longer parses")?;
        config.bridges().push(line);
    }
    for transport in &bridges.transports {
        let protocols = transport
            .protocols
            .iter()
            .map(|p| p.parse::<PtTransportName>())
            .collect::<Result<Vec<_>, _>>()
            .context("a transport name that was checked no longer parses")?;
        let mut pt = TransportConfigBuilder::default();
        pt.protocols(protocols)
            .path(CfgPath::new_literal(transport.path.clone()))
            .arguments(transport.arguments.clone())
            .run_on_startup(transport.used);
        config.transports().push(pt);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Authority, Fallback};

    fn local_network() -> TorNetwork {
        TorNetwork {
            authorities: vec![Authority {
                v3ident: [1; 20],
                address: "127.0.0.1:7000".parse().expect("addr"),
            }],
            fallbacks: vec![Fallback {
                rsa_identity: [2; 20],
                ed_identity: [3; 32],
                orport: "127.0.0.1:5000".parse().expect("addr"),
            }],
        }
    }

    #[test]
    fn unconfigured_dirs_are_private_and_removed() {
        let dirs = TorDirs::new(&TorConfig::default()).expect("dirs");
        let temp = dirs.temp().expect("a temp dir").to_owned();
        assert!(dirs.state.starts_with(&temp) && dirs.cache.starts_with(&temp));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&temp).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(dirs);
        assert!(!temp.exists());
    }

    #[test]
    fn configured_dirs_are_used_as_they_are() {
        let tor = TorConfig {
            state_dir: Some("/srv/state".into()),
            cache_dir: Some("/srv/cache".into()),
            ..TorConfig::default()
        };
        let dirs = TorDirs::new(&tor).expect("dirs");
        assert!(dirs.temp().is_none());
        assert_eq!(dirs.state, Path::new("/srv/state"));
        assert_eq!(dirs.cache, Path::new("/srv/cache"));
    }

    #[test]
    fn a_private_network_config_builds() {
        let tor = TorConfig {
            network: Some(local_network()),
            ..TorConfig::default()
        };
        let dirs = TorDirs::new(&tor).expect("dirs");
        client_config(&tor, &dirs).expect("valid config");
        client_config(&TorConfig::default(), &dirs).expect("valid public config");
    }
}
