#![doc = include_str!("../README.md")]

pub mod context;
pub mod error;
pub mod event;
pub mod factory;
pub mod html;
pub mod http;
pub mod mode;
pub mod plugin;
pub mod testing;

pub use axum;
pub use context::{TabContext, TaskGuard};
pub use error::{BuildError, ConfigError, ModeError};
pub use event::{Direction, TabEvent, TransferOutcome};
pub use factory::{DynMode, ModeFactory};
pub use mode::Mode;
pub use tokio_util::sync::CancellationToken;

/// The sdk's version, as mode libraries and the host see it.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
