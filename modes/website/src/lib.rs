#![doc = include_str!("../README.md")]

mod config;
mod routes;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::Arc;

use onionhost_sdk::axum::Router;
use onionhost_sdk::files::{GoneReports, Kind, Tree};
use onionhost_sdk::http::ContentSecurityPolicy;
use onionhost_sdk::{BuildError, Mode, ModeConfig, TabContext, TabEvent};
use tokio::sync::Semaphore;

pub use config::WebsiteConfig;

/// The website mode: a static site served from a folder (`mode = "website"`). An instance
/// is everything one website tab's handlers use; two tabs never share any of it.
pub struct WebsiteMode {
    config: WebsiteConfig,
    tree: Tree,
    ctx: TabContext,
    /// Bounds the files sent at once (each is read on a thread of its own).
    downloads: Arc<Semaphore>,
    /// The files the console was told are no longer served.
    gone_reported: GoneReports,
}

/// The instance, as the handlers name it.
pub(crate) type Website = WebsiteMode;

impl Website {
    /// When `err` says a file of the site is no longer served (it changed, was deleted or
    /// became unreadable after the tab started), tells the console once for that file.
    fn report_gone(&self, err: &io::Error) {
        let Some(gone) = self.gone_reported.first(err) else {
            return;
        };
        let what = if self.config.show_file_names_in_console {
            self.tree.nodes[gone.node].rel.clone()
        } else {
            "a file of the site".to_owned()
        };
        self.ctx.report(TabEvent::Notice {
            message: format!(
                "{what} {}, so it is no longer served (restart the tab to serve it again)",
                gone.why.since("the site started")
            ),
        });
    }
}

impl Mode for WebsiteMode {
    const NAME: &'static str = "website";

    type Config = WebsiteConfig;

    fn build(config: WebsiteConfig, ctx: TabContext) -> Result<Self, BuildError> {
        let tree =
            Tree::of_folder(&config.dir).map_err(|err| BuildError::Other(err.to_string()))?;
        let (bytes, files) = tree.totals();
        let home = match tree.child(0, routes::INDEX).map(|id| &tree.nodes[id].kind) {
            Some(Kind::File(_)) => "/ shows index.html",
            _ => "no index.html, so / lists the folder",
        };
        ctx.report(TabEvent::Notice {
            message: format!(
                "serving a website of {files} file(s), {} in all; {home}",
                onionhost_sdk::ByteSize(bytes)
            ),
        });
        if tree.skipped > 0 {
            ctx.report(TabEvent::Notice {
                message: format!(
                    "{} symbolic link(s) or special file(s) in the folder are not served",
                    tree.skipped
                ),
            });
        }
        for message in config.warnings() {
            ctx.report(TabEvent::Notice { message });
        }
        if let ContentSecurityPolicy::Custom(_) = &config.csp {
            ctx.report(TabEvent::Notice {
                message: "pages are served with the site's own Content-Security-Policy (csp)"
                    .to_owned(),
            });
        }
        let downloads = Arc::new(Semaphore::new(config.max_concurrent_downloads));
        let gone_reported = GoneReports::new(&tree);
        Ok(Self {
            config,
            tree,
            ctx,
            downloads,
            gone_reported,
        })
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(routes::serve).with_state(self)
    }

    fn content_security_policy(&self) -> ContentSecurityPolicy {
        self.config.csp.clone()
    }
}
