#![doc = include_str!("../README.md")]

mod body;
mod config;
mod html;
mod routes;
mod zip;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use onionhost_sdk::axum::Router;
use onionhost_sdk::axum::routing::get;
use onionhost_sdk::{BuildError, Mode, TabContext, TabEvent};
use tokio::sync::Semaphore;

pub use config::ShareConfig;

use onionhost_sdk::files::{GoneReports, Kind, Tree};
use zip::ZipLayout;

/// The share mode: files and folders for download (`mode = "share"`). An instance is
/// everything one share tab's handlers use; two tabs never share any of it.
pub struct ShareMode {
    config: ShareConfig,
    index: Tree,
    zip: ZipLayout,
    zip_name: String,
    ctx: TabContext,
    /// Bounds downloads running at once.
    downloads: Arc<Semaphore>,
    next_transfer: AtomicU64,
    stop_requested: AtomicBool,
    /// The files the console was told are no longer served.
    gone_reported: GoneReports,
}

/// The instance, as the handlers name it.
pub(crate) type Share = ShareMode;

impl Share {
    /// Called when a whole file or the whole zip has been sent: stops the tab if asked to.
    fn whole_download_finished(&self) {
        if self.config.stop_after_first_download
            && !self.stop_requested.swap(true, Ordering::SeqCst)
        {
            self.ctx.request_stop(
                "the first download is complete (stop_after_first_download is on; \
                 use --keep-sharing or stop_after_first_download = false to keep sharing)",
            );
        }
    }

    /// When `err` says a shared file is no longer served (it changed, was deleted or became
    /// unreadable after sharing started), tells the console once for that file.
    fn report_gone(&self, err: &io::Error) {
        let Some(gone) = self.gone_reported.first(err) else {
            return;
        };
        let what = if self.config.show_file_names_in_console {
            self.index.nodes[gone.node].rel.clone()
        } else {
            "a shared file".to_owned()
        };
        self.ctx.report(TabEvent::Notice {
            message: format!(
                "{what} {}, so it is no longer served (restart the share to serve it again)",
                gone.why.since("sharing started")
            ),
        });
    }
}

impl Mode for ShareMode {
    const NAME: &'static str = "share";

    type Config = ShareConfig;

    fn build(config: ShareConfig, ctx: TabContext) -> Result<Self, BuildError> {
        let index =
            Tree::of_items(&config.paths).map_err(|err| BuildError::Other(err.to_string()))?;
        let zip = ZipLayout::new(&index);
        let zip_name = match &config.zip_name {
            Some(name) => name.clone(),
            None => match &index.nodes[0].kind {
                Kind::Dir { children, .. } if children.len() == 1 => {
                    format!("{}.zip", index.nodes[children[0]].name)
                }
                _ => "onionhost-share.zip".to_owned(),
            },
        };
        let (bytes, files) = index.totals();
        ctx.report(TabEvent::Notice {
            message: format!(
                "sharing {files} file(s), {} in all ({} as a zip)",
                onionhost_sdk::ByteSize(bytes),
                onionhost_sdk::ByteSize(zip.len())
            ),
        });
        if index.skipped > 0 {
            ctx.report(TabEvent::Notice {
                message: format!(
                    "{} symbolic link(s) or special file(s) inside the shared folders are not shared",
                    index.skipped
                ),
            });
        }
        let downloads = Arc::new(Semaphore::new(config.max_concurrent_downloads));
        let gone_reported = GoneReports::new(&index);
        Ok(Self {
            config,
            index,
            zip,
            zip_name,
            ctx,
            downloads,
            next_transfer: AtomicU64::new(0),
            stop_requested: AtomicBool::new(false),
            gone_reported,
        })
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(routes::index))
            .route("/download", get(routes::download))
            .route("/files", get(routes::index))
            .route("/files/", get(routes::index))
            .route("/files/{*path}", get(routes::files))
            .fallback(routes::not_found)
            .with_state(self)
    }
}
