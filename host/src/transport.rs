//! Transports: how a tab's visitors reach it. The seam between the host and the network.
//!
//! A transport turns a tab into a stream of visitor connections, each a plain byte stream.
//! Modes never see which transport serves them: the same router is served on a loopback TCP
//! connection (`--local-only`) and on an onion service stream.

use futures::stream::BoxStream;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::TabConfig;
use crate::console::Console;

pub(crate) mod local;
pub(crate) mod onion;

/// A visitor's connection: any byte stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// One visitor connection, as a boxed byte stream.
pub(crate) type Connection = Box<dyn Io>;

/// A tab's incoming connections. Dropping it stops listening (and takes the tab's onion
/// service down).
pub(crate) type Incoming = BoxStream<'static, Connection>;

/// The transport every tab of this host uses.
pub(crate) enum Transport {
    /// Loopback TCP, no Tor.
    Local,
    /// Each tab its own onion service.
    Onion(onion::OnionTransport),
}

impl Transport {
    /// Starts serving `tab`: listens and tells the user where the tab can be reached.
    pub(crate) async fn open(
        &self,
        tab: &TabConfig,
        console: &Console,
    ) -> anyhow::Result<Incoming> {
        match self {
            Self::Local => local::open(tab, console).await,
            Self::Onion(onion) => onion.open(tab, console).await,
        }
    }
}
