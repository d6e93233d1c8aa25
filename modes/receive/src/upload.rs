//! `POST /upload`: a multipart form streamed to disk part by part, chunk by chunk, with every
//! limit checked as the bytes arrive. Nothing is held in memory beyond one write buffer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use multer::{Constraints, Field, Multipart};
use onionhost_sdk::axum::body::{Body, BodyDataStream, Bytes};
use onionhost_sdk::axum::extract::State;
use onionhost_sdk::axum::http::{HeaderMap, StatusCode, header};
use onionhost_sdk::axum::response::Response;
use onionhost_sdk::{Direction, TabEvent, TransferOutcome};
use tokio::time::timeout;

use crate::Receive;
use crate::names;
use crate::page;
use crate::store::{SavedFile, UploadFiles};

/// The form's field of files (repeatable).
pub(crate) const FILES_FIELD: &str = "files";
/// The form's field of the text message.
pub(crate) const TEXT_FIELD: &str = "text";
/// The name a text message is saved under (numbered when taken).
pub(crate) const MESSAGE_NAME: &str = "message.txt";

/// Free space is checked again after this many bytes of one upload.
const SPACE_CHECK_EVERY: u64 = 16 * 1024 * 1024;
/// Progress goes to the console at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Parts beyond `max_files_per_upload` tolerated for text and empty file inputs.
const EXTRA_PARTS: usize = 8;
/// Bytes of a request that are not part data (boundaries and part headers) allowed before the
/// request is refused, plus [`OVERHEAD_PER_PART`] per part: a part header that never ends
/// must not make the parser buffer the request.
const OVERHEAD_BASE: u64 = 1024 * 1024;
const OVERHEAD_PER_PART: u64 = 64 * 1024;
/// After refusing an upload, the rest of its body is read and thrown away, up to this much
/// and this long, so that the visitor's browser is still listening when the answer comes.
const DRAIN_MAX: u64 = 64 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// A limit an upload went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    UploadSize,
    TotalSize,
    FreeSpace,
    FileCount,
    TextSize,
}

impl Limit {
    /// The config key of the limit, which is also the `error` code in JSON answers.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Limit::UploadSize => "max_upload_size",
            Limit::TotalSize => "max_total_size",
            Limit::FreeSpace => "min_free_space",
            Limit::FileCount => "max_files_per_upload",
            Limit::TextSize => "max_text_size",
        }
    }
}

/// Why an upload was refused or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("the upload went over {}", .0.key())]
    TooLarge(Limit),
    #[error("files are disabled")]
    FilesDisabled,
    #[error("text messages are disabled")]
    TextDisabled,
    #[error("the request is not a multipart form")]
    NotMultipart,
    #[error("the form is malformed or was cut off")]
    Malformed(#[source] multer::Error),
    #[error("the form carried no file and no message")]
    Empty,
    #[error("too many uploads in progress")]
    Busy,
    #[error("too many uploads this minute")]
    RateLimited,
    #[error("the visitor sent nothing for too long")]
    IdleTimeout,
    #[error("could not {action}")]
    Io {
        action: &'static str,
        #[source]
        source: io::Error,
    },
}

impl UploadError {
    fn io(action: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| {
            if source.kind() == io::ErrorKind::StorageFull {
                UploadError::TooLarge(Limit::FreeSpace)
            } else {
                UploadError::Io { action, source }
            }
        }
    }

    /// The status the visitor gets.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            UploadError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::FilesDisabled | UploadError::TextDisabled => StatusCode::FORBIDDEN,
            UploadError::NotMultipart => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            UploadError::Malformed(_) | UploadError::Empty => StatusCode::BAD_REQUEST,
            UploadError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            UploadError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            UploadError::IdleTimeout => StatusCode::REQUEST_TIMEOUT,
            UploadError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable code for the page's script (and tests): the config key of a limit, or a word.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            UploadError::TooLarge(limit) => limit.key(),
            UploadError::FilesDisabled => "files_disabled",
            UploadError::TextDisabled => "text_disabled",
            UploadError::NotMultipart => "not_multipart",
            UploadError::Malformed(_) => "malformed",
            UploadError::Empty => "empty",
            UploadError::Busy => "busy",
            UploadError::RateLimited => "rate_limited",
            UploadError::IdleTimeout => "timeout",
            UploadError::Io { .. } => "server_error",
        }
    }

    /// Whether the rest of the request should be read before answering: the request itself
    /// was fine to read, the visitor just must not have its data kept.
    fn should_drain(&self) -> bool {
        matches!(
            self,
            UploadError::TooLarge(_)
                | UploadError::FilesDisabled
                | UploadError::TextDisabled
                | UploadError::Io { .. }
        )
    }
}

/// `POST /upload`.
pub(crate) async fn upload(
    State(receive): State<Arc<Receive>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let json = page::wants_json(&headers);
    match handle(&receive, &headers, body).await {
        Ok(saved) => page::received(&receive, json, &saved),
        Err(err) => {
            match &err {
                UploadError::Io { .. } => tracing::warn!("an upload failed: {err}"),
                _ => tracing::debug!("an upload was refused: {err}"),
            }
            page::refused(&receive, json, &err)
        }
    }
}

async fn handle(
    receive: &Receive,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<SavedFile>, UploadError> {
    let Ok(_slot) = Arc::clone(&receive.slots).try_acquire_owned() else {
        return Err(UploadError::Busy);
    };
    receive
        .rate
        .try_take(Instant::now())
        .map_err(|_| UploadError::RateLimited)?;
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        .ok_or(UploadError::NotMultipart)?;
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let meter = Arc::new(Meter::default());
    let mut multipart = Multipart::with_constraints(
        metered(body, Arc::clone(&meter)),
        boundary,
        Constraints::new().allowed_fields(vec![FILES_FIELD, TEXT_FIELD]),
    );
    let mut upload = Upload::new(receive, content_length);
    let mut field = None;
    let checked = match upload.check_announced(content_length) {
        Ok(()) => upload.check_space(content_length.unwrap_or(0)).await,
        Err(err) => Err(err),
    };
    let result = match checked {
        Ok(()) => upload.read(&mut multipart, &mut field, &meter).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => upload.commit().await,
        Err(err) => {
            // The user sees why an upload did not arrive; the message names a limit or a
            // kind of failure, never anything the visitor sent.
            receive.ctx.report(TabEvent::Notice {
                message: format!("upload #{} not saved: {err}", upload.id),
            });
            // Remove what was written before spending time on the rest of the request.
            drop(upload);
            if err.should_drain() {
                drain(&mut multipart, field, &meter).await;
            }
            Err(err)
        }
    }
}

/// One upload in progress. Dropped before [`Upload::commit`], it removes everything it
/// wrote, gives its bytes back to the tab's budget and tells the console it was cancelled.
struct Upload<'a> {
    receive: &'a Receive,
    id: u64,
    files: Option<UploadFiles>,
    /// Bytes accepted so far (files and text), all reserved from the budget.
    bytes: u64,
    text_bytes: u64,
    file_count: usize,
    parts: usize,
    since_space_check: u64,
    last_progress: Instant,
    done: bool,
}

impl<'a> Upload<'a> {
    fn new(receive: &'a Receive, content_length: Option<u64>) -> Self {
        let id = receive.next_id.fetch_add(1, Ordering::Relaxed);
        receive.ctx.report(TabEvent::TransferStarted {
            id,
            direction: Direction::Upload,
            total_bytes: content_length,
            label: None,
        });
        Self {
            receive,
            id,
            files: Some(UploadFiles::new(receive.dir.clone())),
            bytes: 0,
            text_bytes: 0,
            file_count: 0,
            parts: 0,
            since_space_check: 0,
            last_progress: Instant::now(),
            done: false,
        }
    }

    fn files(&mut self) -> Result<&mut UploadFiles, UploadError> {
        self.files.as_mut().ok_or(UploadError::Io {
            action: "continue an upload already ended",
            source: io::Error::other("no upload"),
        })
    }

    /// Reads every part of the form into files. `field` holds the part being read, so that
    /// the caller can read the rest of the request after an error.
    async fn read(
        &mut self,
        multipart: &mut Multipart<'static>,
        field: &mut Option<Field<'static>>,
        meter: &Meter,
    ) -> Result<(), UploadError> {
        let config = &self.receive.config;
        let idle = config.idle_timeout();
        loop {
            *field = None;
            let next = timeout(idle, multipart.next_field())
                .await
                .map_err(|_| UploadError::IdleTimeout)?
                .map_err(UploadError::Malformed)?;
            let Some(next) = next else { break };
            self.parts += 1;
            meter.parts.fetch_add(1, Ordering::Relaxed);
            if self.parts > config.max_files_per_upload + EXTRA_PARTS {
                *field = Some(next);
                return Err(UploadError::TooLarge(Limit::FileCount));
            }
            let is_text = next.name() == Some(TEXT_FIELD);
            let file_name = next.file_name().unwrap_or_default().to_owned();
            let part = field.insert(next);
            if !is_text && !file_name.is_empty() {
                // A named file is saved even when empty.
                self.start_file(names::sanitize(&file_name)).await?;
            }
            loop {
                let chunk = timeout(idle, part.chunk())
                    .await
                    .map_err(|_| UploadError::IdleTimeout)?
                    .map_err(UploadError::Malformed)?;
                let Some(chunk) = chunk else { break };
                meter
                    .delivered
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if chunk.is_empty() {
                    continue;
                }
                if !self.files()?.is_writing() {
                    // Browsers send an empty, nameless file part when no file was chosen and
                    // an empty text field when no message was written: only data counts.
                    if is_text {
                        self.start_text().await?;
                    } else {
                        self.start_file(names::FALLBACK_NAME.to_owned()).await?;
                    }
                }
                self.accept(&chunk, is_text).await?;
            }
            self.files()?
                .finish_current()
                .await
                .map_err(UploadError::io("save a received file"))?;
        }
        *field = None;
        if self.files()?.folder().is_none() {
            return Err(UploadError::Empty);
        }
        Ok(())
    }

    async fn start_file(&mut self, name: String) -> Result<(), UploadError> {
        if self.receive.config.disable_files {
            return Err(UploadError::FilesDisabled);
        }
        self.file_count += 1;
        if self.file_count > self.receive.config.max_files_per_upload {
            return Err(UploadError::TooLarge(Limit::FileCount));
        }
        self.files()?
            .start(name, false)
            .await
            .map_err(UploadError::io("create a file for an upload"))
    }

    async fn start_text(&mut self) -> Result<(), UploadError> {
        if self.receive.config.disable_text {
            return Err(UploadError::TextDisabled);
        }
        self.files()?
            .start(MESSAGE_NAME.to_owned(), true)
            .await
            .map_err(UploadError::io("create a file for a message"))
    }

    /// Checks a chunk against every limit, then writes it.
    async fn accept(&mut self, chunk: &Bytes, is_text: bool) -> Result<(), UploadError> {
        let config = &self.receive.config;
        let n = chunk.len() as u64;
        if is_text {
            self.text_bytes += n;
            if self.text_bytes > config.max_text_size.0 {
                return Err(UploadError::TooLarge(Limit::TextSize));
            }
        }
        if self.bytes + n > config.max_upload_size.0 {
            return Err(UploadError::TooLarge(Limit::UploadSize));
        }
        if !self.receive.budget.try_reserve(n) {
            return Err(UploadError::TooLarge(Limit::TotalSize));
        }
        self.bytes += n;
        self.since_space_check += n;
        if self.since_space_check >= SPACE_CHECK_EVERY {
            self.since_space_check = 0;
            self.check_space(0).await?;
        }
        self.files()?
            .write(chunk)
            .await
            .map_err(UploadError::io("write a received file"))?;
        if self.last_progress.elapsed() >= PROGRESS_EVERY {
            self.last_progress = Instant::now();
            self.receive.ctx.report(TabEvent::TransferProgress {
                id: self.id,
                bytes: self.bytes,
            });
        }
        Ok(())
    }

    /// Refuses at once an upload whose announced length (`Content-Length`) cannot fit in
    /// `max_upload_size` or in what is left of `max_total_size`, even after taking away the
    /// most form overhead (boundaries, part headers) the request may carry. Otherwise the
    /// visitor would find out only once the limit is reached, perhaps hours into the
    /// upload, after the host wrote all that to disk for nothing.
    fn check_announced(&self, content_length: Option<u64>) -> Result<(), UploadError> {
        let Some(announced) = content_length else {
            return Ok(());
        };
        let config = &self.receive.config;
        let parts = (config.max_files_per_upload + EXTRA_PARTS) as u64;
        let data = announced
            .saturating_sub(OVERHEAD_BASE.saturating_add(OVERHEAD_PER_PART.saturating_mul(parts)));
        if data > config.max_upload_size.0 {
            return Err(UploadError::TooLarge(Limit::UploadSize));
        }
        if data > self.receive.budget.left() {
            return Err(UploadError::TooLarge(Limit::TotalSize));
        }
        Ok(())
    }

    /// Refuses the upload when the disk would keep less than `min_free_space` after
    /// `coming` more bytes.
    async fn check_space(&self, coming: u64) -> Result<(), UploadError> {
        let dir = self.receive.dir.clone();
        let free = tokio::task::spawn_blocking(move || crate::store::free_space(&dir))
            .await
            .map_err(|err| UploadError::Io {
                action: "check the free disk space",
                source: io::Error::other(err),
            })?
            .map_err(UploadError::io("check the free disk space"))?;
        if free < self.receive.config.min_free_space.0.saturating_add(coming) {
            return Err(UploadError::TooLarge(Limit::FreeSpace));
        }
        Ok(())
    }

    /// Keeps the upload: files get their final names; the console hears where they are.
    async fn commit(mut self) -> Result<Vec<SavedFile>, UploadError> {
        let mut files = self.files.take().ok_or(UploadError::Io {
            action: "complete an upload",
            source: io::Error::other("no upload"),
        })?;
        let folder = files.folder().map(|f| f.display().to_string());
        // Until every byte is on disk, a visitor going away still removes everything.
        files
            .finish_current()
            .await
            .map_err(UploadError::io("save a received file"))?;
        // Naming the files takes no time and must not be cut half-way: from here the upload
        // is kept (and stays counted) even if this future is dropped.
        self.done = true;
        let saved = match files.commit().await {
            Ok(saved) => saved,
            Err(err) => {
                self.abandon();
                return Err(UploadError::io("give received files their names")(err));
            }
        };
        let receive = self.receive;
        if receive.config.show_file_names_in_console {
            let names: Vec<String> = saved.iter().map(|s| format!("{:?}", s.name)).collect();
            receive.ctx.report(TabEvent::Notice {
                message: format!("upload #{} received {}", self.id, names.join(", ")),
            });
        }
        receive.ctx.report(TabEvent::TransferFinished {
            id: self.id,
            bytes: self.bytes,
            outcome: TransferOutcome::Completed,
            saved_to: folder,
        });
        Ok(saved)
    }
}

impl Upload<'_> {
    /// Removes what the upload wrote, gives its bytes back and tells the console.
    fn abandon(&mut self) {
        // The files go first (their own guard), then the budget they held.
        self.files = None;
        self.receive.budget.release(self.bytes);
        self.receive.ctx.report(TabEvent::TransferFinished {
            id: self.id,
            bytes: self.bytes,
            outcome: TransferOutcome::Cancelled,
            saved_to: None,
        });
    }
}

impl Drop for Upload<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.abandon();
        }
    }
}

/// Counts a request's bytes: those pulled from the connection, and those handed out as part
/// data. The difference is what the parser buffers, which must stay small.
#[derive(Debug, Default)]
struct Meter {
    pulled: AtomicU64,
    delivered: AtomicU64,
    parts: AtomicU64,
    draining: AtomicBool,
}

/// The most the parser may pull from the connection in one go: it reads whatever is ready
/// before it looks at it, so without this bound it could buffer a whole socket's worth.
const BURST: u64 = 256 * 1024;

/// The request body, counted in [`Meter`], handed to the parser in bursts of at most
/// [`BURST`] bytes.
struct Metered {
    inner: BodyDataStream,
    meter: Arc<Meter>,
    burst: u64,
}

fn metered(body: Body, meter: Arc<Meter>) -> Metered {
    Metered {
        inner: body.into_data_stream(),
        meter,
        burst: 0,
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.burst >= BURST {
            // Let the parser hand out what it has before it reads more; it is polled again
            // at once.
            self.burst = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let bytes = match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => bytes,
            Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(io::Error::other(err)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                self.burst = 0;
                return Poll::Pending;
            }
        };
        let len = bytes.len() as u64;
        self.burst += len;
        let meter = &self.meter;
        // What the parser holds when it asks for more: at most a burst of data not yet handed
        // out, plus boundaries and part headers. Far more means a header that never ends.
        let pulled_before = meter.pulled.fetch_add(len, Ordering::Relaxed);
        if !meter.draining.load(Ordering::Relaxed) {
            let held = pulled_before.saturating_sub(meter.delivered.load(Ordering::Relaxed));
            let allowed = OVERHEAD_BASE
                + OVERHEAD_PER_PART.saturating_mul(meter.parts.load(Ordering::Relaxed));
            if held > allowed {
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the form's part headers are too large",
                ))));
            }
        }
        Poll::Ready(Some(Ok(bytes)))
    }
}

/// Reads and throws away the rest of a refused request (bounded in bytes and time).
async fn drain(multipart: &mut Multipart<'static>, field: Option<Field<'static>>, meter: &Meter) {
    meter.draining.store(true, Ordering::Relaxed);
    let start = meter.pulled.load(Ordering::Relaxed);
    let over = || meter.pulled.load(Ordering::Relaxed).saturating_sub(start) > DRAIN_MAX;
    let read_all = async {
        let mut field = field;
        loop {
            // Each part is dropped before the next is asked for, as the parser requires.
            if let Some(mut part) = field.take() {
                while let Ok(Some(_)) = part.chunk().await {
                    if over() {
                        return;
                    }
                }
            }
            match multipart.next_field().await {
                Ok(Some(next)) => field = Some(next),
                _ => return,
            }
        }
    };
    let _ = timeout(DRAIN_TIME, read_all).await;
}
