#![doc = include_str!("../README.md")]

pub mod context;
pub mod error;
pub mod event;
pub mod files;
pub mod html;
// Only the host and the plugin export use it; a mode never needs it.
#[doc(hidden)]
pub mod host;
pub mod http;
pub mod mode;
pub mod notice;
pub mod page;
pub mod plugin;
pub mod rate;
pub mod size;
pub mod testing;
pub mod text;

pub use axum;
pub use context::{TabContext, TaskGuard};
pub use error::{BuildError, ConfigError, ModeError};
pub use event::{Direction, TabEvent, TransferOutcome};
pub use http::Visitor;
/// HTML templates that escape every splice; [`page`] frames them. A crate that writes
/// templates depends on `maud` itself too (see [`page`]).
pub use maud;
pub use mode::{Mode, ModeConfig};
pub use size::ByteSize;
pub use tokio_util::sync::CancellationToken;

/// The sdk's version, as mode libraries and the host see it.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
