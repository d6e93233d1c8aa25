//! One tab's onion service on the system's tor: its ADD_ONION command, the console lines
//! about it, its connections, and its DEL_ONION when the tab stops.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt as _;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zeroize::Zeroizing;

use super::control::Control;
use super::reply::Reply;
use crate::config::OnionTabOptions;
use crate::console::Console;
use crate::transport::Incoming;
use crate::transport::onion::{TabKeys, announce_serving};

/// Streams one visitor circuit may have open at once (as with the embedded Arti); tor closes
/// a circuit that asks for more (`MaxStreamsCloseCircuit`).
const MAX_STREAMS_PER_CIRCUIT: u32 = 64;

/// The prefix of a client key as the config and Arti write it.
const CLIENT_KEY_PREFIX: &str = "descriptor:x25519:";

/// Which identity key the service gets.
pub(super) enum Key {
    /// A new one that tor makes and forgets (`NEW:ED25519-V3`, `Flags=DiscardPK`): an
    /// ephemeral tab's key never exists outside tor's memory.
    New,
    /// The tab's own key: the base64 of its expanded secret.
    Given(Zeroizing<String>),
}

/// An ADD_ONION request.
pub(super) struct AddOnion {
    pub(super) key: Key,
    /// The x25519 public keys (base32) allowed to fetch the descriptor; none for a public tab.
    pub(super) clients: Vec<String>,
    /// Where tor sends the streams for port 80: `unix:/path` or `127.0.0.1:PORT`.
    pub(super) target: String,
    /// Ask tor for its proof-of-work defence (`PoWDefensesEnabled=1`, tor 0.4.9).
    pub(super) proof_of_work: bool,
}

impl AddOnion {
    /// The command line. It holds the key of a persistent tab: never log it.
    pub(super) fn line(&self) -> Zeroizing<String> {
        let mut line = Zeroizing::new(String::from("ADD_ONION "));
        let mut flags = vec!["MaxStreamsCloseCircuit"];
        match &self.key {
            Key::New => {
                line.push_str("NEW:ED25519-V3");
                flags.push("DiscardPK");
            }
            Key::Given(secret) => {
                line.push_str("ED25519-V3:");
                line.push_str(secret);
            }
        }
        if !self.clients.is_empty() {
            flags.push("V3Auth");
        }
        line.push_str(&format!(
            " Flags={} MaxStreams={MAX_STREAMS_PER_CIRCUIT}",
            flags.join(",")
        ));
        if self.proof_of_work {
            line.push_str(" PoWDefensesEnabled=1");
        }
        line.push_str(&format!(" Port=80,{}", self.target));
        for client in &self.clients {
            line.push_str(" ClientAuthV3=");
            line.push_str(client);
        }
        line
    }
}

/// The client keys of a private tab, as ClientAuthV3 takes them: the host's own (whose
/// private half the console prints) and the config's `authorized_clients`.
pub(super) fn client_keys(keys: &TabKeys, options: &OnionTabOptions) -> Vec<String> {
    if options.public {
        return Vec::new();
    }
    keys.client_public()
        .into_iter()
        .chain(options.authorized_clients.iter().map(|c| c.key().clone()))
        .map(|key| {
            let text = key.to_string();
            text.strip_prefix(CLIENT_KEY_PREFIX)
                .unwrap_or(&text)
                .to_owned()
        })
        .collect()
}

/// What [`publish`] needs besides the connections.
pub(super) struct Publication<'a> {
    pub(super) control: &'a Control,
    pub(super) name: &'a str,
    pub(super) request: AddOnion,
    pub(super) keys: &'a TabKeys,
    pub(super) qr: bool,
    /// Whether HS_DESC events come (else the address is printed at once).
    pub(super) events: bool,
    /// The Unix socket to remove when the tab stops.
    pub(super) socket: Option<PathBuf>,
    pub(super) tasks: &'a TaskTracker,
}

/// Publishes the service and returns its connections: the address is printed once tor has
/// uploaded a descriptor; dropping the stream sends DEL_ONION; a lost control connection
/// ends the stream (the tab fails) with a line on the console.
pub(super) async fn publish(
    publication: Publication<'_>,
    connections: Incoming,
    console: &Console,
) -> anyhow::Result<Incoming> {
    let Publication {
        control,
        name,
        request,
        keys,
        qr,
        events,
        socket,
        tasks,
    } = publication;
    let uploads = control.events();
    console.tabs().publishing(name);
    console.tab(name, "publishing the onion service");
    let reply = control
        .command(&request.line())
        .await
        .context("cannot publish the onion service")?;
    let id = service_id(&reply)?;
    let address = format!("{id}.onion");
    if matches!(request.key, Key::Given(_)) {
        anyhow::ensure!(
            keys.onion_address()? == address,
            "the system's tor published the tab's key under another address"
        );
    }
    let stop = CancellationToken::new();
    let guard = Removal {
        control: control.clone(),
        id: id.clone(),
        socket,
        tasks: tasks.clone(),
        stop: stop.clone(),
    };
    let announce = Announce {
        name: name.to_owned(),
        address,
        private_key: keys.client_private_base32(),
        qr,
        console: console.clone(),
    };
    if events {
        tokio::spawn(announce_when_uploaded(uploads, id, announce, stop));
    } else {
        announce.print();
    }
    let lost = control.lost();
    let console = console.clone();
    let name = name.to_owned();
    let stream = futures::stream::unfold(
        (connections, guard, lost, console, name),
        |(mut connections, guard, lost, console, name)| async move {
            let next = tokio::select! {
                connection = connections.next() => connection,
                () = lost.cancelled() => {
                    console.tab(&name, "the system's tor lost its control connection with onionhost, so this tab's onion service is gone");
                    None
                }
            };
            Some((next?, (connections, guard, lost, console, name)))
        },
    );
    Ok(stream.boxed())
}

/// The `ServiceID` of an ADD_ONION reply, checked to be a v3 address's label.
fn service_id(reply: &Reply) -> anyhow::Result<String> {
    let id = reply
        .value("ServiceID")
        .context("tor's answer to ADD_ONION has no ServiceID")?;
    anyhow::ensure!(
        id.len() == 56
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
        "tor's answer to ADD_ONION has a ServiceID that is not a v3 onion address"
    );
    Ok(id)
}

/// Takes the service down when the tab's connections are dropped.
struct Removal {
    control: Control,
    id: String,
    socket: Option<PathBuf>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Drop for Removal {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
        if self.control.lost().is_cancelled() {
            return;
        }
        let control = self.control.clone();
        let line = format!("DEL_ONION {}", self.id);
        self.tasks.spawn(async move {
            if let Err(err) = control.command(&line).await {
                tracing::debug!("DEL_ONION failed: {err:#}");
            }
        });
    }
}

/// What the console says once the service is reachable.
struct Announce {
    name: String,
    address: String,
    private_key: Option<Zeroizing<String>>,
    qr: bool,
    console: Console,
}

impl Announce {
    fn print(self) {
        announce_serving(
            &self.name,
            self.address,
            self.private_key,
            self.qr,
            &self.console,
        );
    }
}

/// Prints the address once tor reports a descriptor uploaded for `id` (to one HSDir: enough
/// for a visitor to find it); nothing if the tab stops first.
async fn announce_when_uploaded(
    mut uploads: broadcast::Receiver<Arc<Reply>>,
    id: String,
    announce: Announce,
    stop: CancellationToken,
) {
    let uploaded = format!("HS_DESC UPLOADED {id} ");
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            event = uploads.recv() => match event {
                Ok(event) if event.first().starts_with(&uploaded) => break,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
    announce.print();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::ClientKey;

    fn request(key: Key, clients: Vec<String>) -> AddOnion {
        AddOnion {
            key,
            clients,
            target: "unix:/run/user/1000/onionhost-x/0.sock".to_owned(),
            proof_of_work: false,
        }
    }

    #[test]
    fn an_ephemeral_private_tab_asks_for_a_discarded_key_and_client_auth() {
        let line = request(Key::New, vec!["AAAA".into(), "BBBB".into()]).line();
        assert_eq!(
            line.as_str(),
            "ADD_ONION NEW:ED25519-V3 Flags=MaxStreamsCloseCircuit,DiscardPK,V3Auth MaxStreams=64 \
             Port=80,unix:/run/user/1000/onionhost-x/0.sock ClientAuthV3=AAAA ClientAuthV3=BBBB"
        );
    }

    #[test]
    fn a_persistent_public_tab_gives_its_key_and_no_clients() {
        let mut request = request(Key::Given(Zeroizing::new("S3CR3T==".into())), Vec::new());
        request.target = "127.0.0.1:4321".into();
        request.proof_of_work = true;
        assert_eq!(
            request.line().as_str(),
            "ADD_ONION ED25519-V3:S3CR3T== Flags=MaxStreamsCloseCircuit MaxStreams=64 \
             PoWDefensesEnabled=1 Port=80,127.0.0.1:4321"
        );
    }

    #[test]
    fn client_keys_are_the_hosts_and_the_configs_in_base32() {
        let keys = TabKeys::generate(true).unwrap();
        let other = TabKeys::generate(true).unwrap();
        let written = other.client_public().unwrap().to_string();
        let options = OnionTabOptions {
            authorized_clients: vec![ClientKey::parse(&written).unwrap()],
            ..OnionTabOptions::default()
        };
        let listed = client_keys(&keys, &options);
        assert_eq!(listed.len(), 2);
        for key in &listed {
            assert_eq!(key.len(), 52, "{key}");
            assert!(!key.contains(':'), "{key}");
        }
        assert_eq!(listed[1], written.strip_prefix(CLIENT_KEY_PREFIX).unwrap());
        let public = OnionTabOptions {
            public: true,
            ..options
        };
        assert!(client_keys(&TabKeys::generate(false).unwrap(), &public).is_empty());
    }

    /// The ADD_ONION pattern of the onion-grater profile the docs ship, as a regex.
    fn profile_pattern() -> regex::Regex {
        let profile = include_str!("../../../../docs/onion-grater/onionhost.yml");
        let mut lines = profile.lines().skip_while(|l| l.trim() != "ADD_ONION:");
        let pattern = lines
            .find_map(|l| l.trim().strip_prefix("- '"))
            .and_then(|l| l.strip_suffix('\''))
            .unwrap();
        regex::Regex::new(&format!("^(?:{pattern})$")).unwrap()
    }

    /// Regression guard: onion-grater (Tails, Whonix) refuses a command its profile does not
    /// match exactly, so a change to the command must change the shipped profile too.
    #[test]
    fn the_shipped_onion_grater_profile_allows_every_command_onionhost_sends() {
        let pattern = profile_pattern();
        let keys = TabKeys::generate(true).unwrap();
        let clients = client_keys(&keys, &OnionTabOptions::default());
        let target = "127.0.0.1:17600".to_owned();
        let mut requests = vec![
            AddOnion {
                key: Key::New,
                clients: clients.clone(),
                target: target.clone(),
                proof_of_work: false,
            },
            AddOnion {
                key: Key::Given(keys.identity_base64()),
                clients: Vec::new(),
                target: target.clone(),
                proof_of_work: true,
            },
        ];
        requests.push(AddOnion {
            key: Key::Given(keys.identity_base64()),
            clients: vec![clients[0].clone(), clients[0].clone()],
            target,
            proof_of_work: false,
        });
        for request in &requests {
            let line = request.line();
            let args = line.strip_prefix("ADD_ONION ").unwrap();
            assert!(pattern.is_match(args), "the profile refuses {args}");
        }
        // It allows no other target than the range onionhost listens on.
        let mut other = requests.swap_remove(0);
        other.target = "127.0.0.1:631".into();
        let line = other.line();
        assert!(!pattern.is_match(line.strip_prefix("ADD_ONION ").unwrap()));
    }

    #[test]
    fn a_service_id_must_be_a_v3_label() {
        let reply = |text: &str| Reply {
            code: 250,
            lines: vec![super::super::reply::ReplyLine {
                text: text.to_owned(),
                data: None,
            }],
        };
        let good = "a".repeat(52) + "bcdd";
        assert_eq!(
            service_id(&reply(&format!("ServiceID={good}"))).unwrap(),
            good
        );
        assert!(service_id(&reply("ServiceID=short")).is_err());
        assert!(service_id(&reply("PrivateKey=x")).is_err());
    }
}
