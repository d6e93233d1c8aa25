#![doc = include_str!("../README.md")]

mod config;
mod names;
mod page;
mod slots;
mod store;
mod upload;

#[cfg(test)]
mod tests;

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use onionhost_sdk::axum::Router;
use onionhost_sdk::axum::extract::DefaultBodyLimit;
use onionhost_sdk::axum::routing::{get, post};
use onionhost_sdk::{BuildError, Mode, TabContext, TabEvent, Visitor};

pub use config::{DEFAULT_DIR, DEFAULT_TITLE, ReceiveConfig};
/// The sizes of [`ReceiveConfig`]: the sdk's one byte-size type.
pub use onionhost_sdk::ByteSize;

use onionhost_sdk::rate::{Rate, RateLimiter};
use slots::Slots;
use store::Budget;

/// The receive mode: visitors upload files and text messages into a folder
/// (`mode = "receive"`). An instance is everything one receive tab's handlers share; two
/// tabs never share any of it.
pub struct ReceiveMode {
    config: ReceiveConfig,
    /// The folder uploads go to, `~` expanded.
    dir: PathBuf,
    /// Bytes in the folder from this run's uploads and earlier runs', against
    /// `max_total_size`.
    budget: Budget,
    /// The `encrypt_to` recipients, when uploads are encrypted.
    recipients: Option<Arc<[age::x25519::Recipient]>>,
    /// Uploads in progress, against `max_concurrent_uploads` and
    /// `max_concurrent_uploads_per_visitor`.
    slots: Arc<Slots<Visitor>>,
    /// Uploads started, against `max_uploads_per_minute`.
    rate: RateLimiter,
    /// Numbers uploads for the console.
    next_id: AtomicU64,
    ctx: TabContext,
}

/// The instance, as the handlers name it.
type Receive = ReceiveMode;

impl Mode for ReceiveMode {
    const NAME: &'static str = "receive";

    type Config = ReceiveConfig;

    fn build(config: ReceiveConfig, ctx: TabContext) -> Result<Self, BuildError> {
        let dir = config.upload_dir().map_err(BuildError::Other)?;
        // Only the folders this creates get 0700; an existing folder keeps the mode its owner
        // gave it (each upload's own folder is 0700 anyway).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|err| {
                BuildError::io(format!("create the upload folder {}", dir.display()), err)
            })?;
        if !dir.is_dir() {
            return Err(BuildError::Other(format!(
                "{} is not a folder: set `dir` to a folder for uploads",
                dir.display()
            )));
        }
        // Checked when the config was read; a failure here would be a bug.
        let recipients = config
            .recipients()
            .map_err(|err| BuildError::Other(err.to_string()))?;
        // Whether the host can send there depends on how it runs (`--local-only`), so this is
        // checked here, at start, never later.
        if let Some(url) = &config.webhook_url {
            ctx.check_notice_url(url).map_err(|err| {
                BuildError::Other(format!("webhook_url {url} cannot be used: {err}"))
            })?;
        }
        let earlier = store::bytes_already_received(&dir).map_err(|err| {
            BuildError::io(
                format!("count what earlier uploads left in {}", dir.display()),
                err,
            )
        })?;
        let mut accepts = Vec::new();
        if !config.disable_files {
            accepts.push(format!(
                "files (at most {} per upload, {} in all)",
                config.max_upload_size, config.max_total_size
            ));
        }
        if !config.disable_text {
            accepts.push("text messages".to_owned());
        }
        let encrypted = if recipients.is_empty() {
            String::new()
        } else {
            format!(
                ", each upload encrypted for {} age recipient(s)",
                recipients.len()
            )
        };
        ctx.report(TabEvent::Notice {
            message: format!(
                "Receiving {} into {}{encrypted}",
                accepts.join(" and "),
                dir.display()
            ),
        });
        if earlier > 0 {
            let left = config.max_total_size.0.saturating_sub(earlier);
            ctx.report(TabEvent::Notice {
                message: format!(
                    "Earlier uploads in the folder take {} of max_total_size ({}); {} left",
                    ByteSize(earlier),
                    config.max_total_size,
                    ByteSize(left)
                ),
            });
        }
        Ok(Self {
            budget: Budget::new(config.max_total_size.0, earlier),
            recipients: (!recipients.is_empty()).then(|| recipients.into()),
            slots: Arc::new(Slots::new(
                config.max_concurrent_uploads,
                config.max_concurrent_uploads_per_visitor,
            )),
            rate: RateLimiter::new(Rate::per_minute(config.max_uploads_per_minute)),
            next_id: AtomicU64::new(1),
            dir,
            config,
            ctx,
        })
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(page::index))
            .route("/bytes.js", page::BYTES_JS.get())
            .route("/receive.js", page::RECEIVE_JS.get())
            // The upload streams to disk under limits of its own, checked as it arrives.
            .route(
                "/upload",
                post(upload::upload).layer(DefaultBodyLimit::disable()),
            )
            .fallback(page::not_found)
            .with_state(self)
    }
}
