//! `POST /upload`: a multipart form streamed to disk part by part, chunk by chunk, with every
//! limit checked as the bytes arrive. Nothing is held in memory beyond one write buffer.
//!
//! Whatever can be judged from the request's head (slots, rate, type, announced length, free
//! space) is judged before the body is touched: hyper sends `100 Continue` only when the body
//! is first polled, so a client that asked for it (`Expect: 100-continue`) gets its refusal
//! at once and never sends the body. Every refusal closes the connection; a refused upload's
//! slot and files are freed before its answer goes out.

mod body;
mod error;
mod pace;
mod part_headers;

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use multer::{Constraints, Field, Multipart};
use onionhost_sdk::axum::body::{Body, Bytes};
use onionhost_sdk::axum::extract::{Request, State};
use onionhost_sdk::axum::http::{HeaderMap, HeaderValue, header};
use onionhost_sdk::axum::response::Response;
use onionhost_sdk::{Direction, TabEvent, TransferOutcome, Visitor};
use tokio::time::{Instant, timeout_at};

use crate::Receive;
use crate::names;
use crate::page;
use crate::slots::SlotRefused;
use crate::store::{SavedFile, UploadFiles};

use body::{DRAIN_MAX, FormRest, Meter, OVERHEAD_BASE, OVERHEAD_PER_PART, Rest, metered};
pub(crate) use error::{Limit, UploadError};
use pace::Pace;
use part_headers::PartHeaders;

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

/// The form as the parser reads it.
type Form = Multipart<'static>;

/// Why an upload ended without being saved, and what is left of its request.
struct Refusal {
    error: UploadError,
    /// The unread rest of the body, when it is worth reading before the connection closes.
    rest: Option<Rest>,
}

impl From<UploadError> for Refusal {
    /// A refusal whose body is not read any further (or was never touched).
    fn from(error: UploadError) -> Self {
        Self { error, rest: None }
    }
}

/// `POST /upload`.
pub(crate) async fn upload(State(receive): State<Arc<Receive>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let json = page::wants_json(&parts.headers);
    // The host puts one on every request; a request without one counts against the tab's
    // bound only.
    let visitor = parts.extensions.get::<Visitor>().copied();
    match handle(&receive, &parts.headers, visitor, body).await {
        Ok(saved) => page::received(&receive, json, &saved),
        Err(Refusal { error, rest }) => {
            match &error {
                UploadError::Io { .. } => tracing::warn!("an upload failed: {error}"),
                _ => tracing::debug!("an upload was refused: {error}"),
            }
            let mut response = page::refused(&receive, json, &error);
            // The rest of the request is not read, or only in the background: the connection
            // carries no further request, and the client must not wait to send one.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            if let Some(rest) = rest {
                tokio::spawn(rest.drain(receive.ctx.shutdown_token()));
            }
            response
        }
    }
}

async fn handle(
    receive: &Receive,
    headers: &HeaderMap,
    visitor: Option<Visitor>,
    body: Body,
) -> Result<Vec<SavedFile>, Refusal> {
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    // Nothing has polled the body yet: a refusal here is answered before the client sends
    // it, if it waits for `100 Continue`; a client that does not wait has its body read
    // after the answer when it is small.
    let before_body = |error: UploadError, body: Body| {
        let expects_continue = headers
            .get(header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let drain = !expects_continue
            && error.worth_draining()
            && content_length.is_none_or(|length| length <= DRAIN_MAX);
        Refusal {
            error,
            rest: drain.then(|| Rest::Body(body)),
        }
    };
    let slot = match receive.slots.try_acquire(visitor) {
        Ok(slot) => slot,
        Err(SlotRefused::Busy) => return Err(before_body(UploadError::Busy, body)),
        Err(SlotRefused::VisitorBusy) => return Err(before_body(UploadError::VisitorBusy, body)),
    };
    if receive.rate.check().is_err() {
        return Err(before_body(UploadError::RateLimited, body));
    }
    let Some(boundary) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        // The part header scrubber relies on it, and a header value cannot hold one anyway.
        .filter(|boundary| !boundary.contains('\r'))
    else {
        return Err(before_body(UploadError::NotMultipart, body));
    };
    let mut upload = Upload::new(receive, content_length);
    let checked = match upload.check_announced(content_length) {
        Ok(()) => upload.check_space(content_length.unwrap_or(0)).await,
        Err(err) => Err(err),
    };
    if let Err(err) = checked {
        upload.refused(&err);
        drop(upload);
        drop(slot);
        return Err(before_body(err, body));
    }
    let meter = Arc::new(Meter::default());
    let form = PartHeaders::new(metered(body, Arc::clone(&meter)), &boundary);
    let mut multipart = Multipart::with_constraints(
        form,
        boundary,
        Constraints::new().allowed_fields(vec![FILES_FIELD, TEXT_FIELD]),
    );
    let mut field = None;
    match upload.read(&mut multipart, &mut field, &meter).await {
        Ok(()) => upload.commit().await.map_err(Refusal::from),
        Err(err) => {
            upload.refused(&err);
            // Files, budget and slot are given back before anything else happens.
            drop(upload);
            drop(slot);
            let left = content_length
                .map(|announced| announced.saturating_sub(meter.pulled.load(Ordering::Relaxed)));
            let drain = err.worth_draining() && left.is_none_or(|left| left <= DRAIN_MAX);
            Err(Refusal {
                error: err,
                rest: drain.then(|| {
                    Rest::Form(Box::new(FormRest {
                        multipart,
                        field,
                        meter,
                    }))
                }),
            })
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
    /// The minimum transfer rate's deadline.
    pace: Pace,
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
            files: Some(UploadFiles::new(
                receive.dir.clone(),
                receive.recipients.clone(),
            )),
            bytes: 0,
            text_bytes: 0,
            file_count: 0,
            parts: 0,
            since_space_check: 0,
            last_progress: Instant::now(),
            pace: Pace::new(
                receive.config.min_upload_rate.0,
                receive.config.upload_rate_grace(),
                Instant::now(),
            ),
            done: false,
        }
    }

    /// Tells the console why the upload is not saved; the message names a limit or a kind of
    /// failure, never anything the visitor sent.
    fn refused(&self, err: &UploadError) {
        self.receive.ctx.report(TabEvent::Notice {
            message: format!("upload #{} not saved: {err}", self.id),
        });
    }

    /// Waits for the visitor's next bytes, at most until the idle timeout or the minimum
    /// rate's deadline, whichever comes first.
    async fn visitor<T>(&self, next: impl Future<Output = T>) -> Result<T, UploadError> {
        let idle = Instant::now() + self.receive.config.idle_timeout();
        let pace = self.pace.deadline().filter(|pace| *pace < idle);
        timeout_at(pace.unwrap_or(idle), next)
            .await
            .map_err(|_| match pace {
                Some(_) => UploadError::TooSlow,
                None => UploadError::IdleTimeout,
            })
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
        multipart: &mut Form,
        field: &mut Option<Field<'static>>,
        meter: &Meter,
    ) -> Result<(), UploadError> {
        let config = &self.receive.config;
        loop {
            *field = None;
            let next = self
                .visitor(multipart.next_field())
                .await?
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
                let chunk = self
                    .visitor(part.chunk())
                    .await?
                    .map_err(UploadError::Malformed)?;
                let Some(chunk) = chunk else { break };
                self.pace.record(chunk.len() as u64, Instant::now());
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
        if !self.files()?.started() {
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
        // Until every byte is on disk, a visitor going away still removes everything.
        files
            .complete()
            .await
            .map_err(UploadError::io("save a received file"))?;
        // Naming the files takes no time and must not be cut half-way: from here the upload
        // is kept (and stays counted) even if this future is dropped.
        self.done = true;
        let committed = match files.commit().await {
            Ok(committed) => committed,
            Err(err) => {
                self.abandon();
                return Err(UploadError::io("give received files their names")(err));
            }
        };
        let receive = self.receive;
        // An encrypted upload takes a little more on disk than it reserved (the age header,
        // the archive's records): the budget counts what is on disk.
        receive
            .budget
            .add(committed.disk_bytes.saturating_sub(self.bytes));
        let saved = committed.saved;
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
            saved_to: committed.location.map(|path| path.display().to_string()),
        });
        if let Some(url) = &receive.config.webhook_url {
            receive.ctx.post_notice(url, &notice(&saved));
        }
        Ok(saved)
    }
}

/// The webhook's notice for a complete upload: how many files, whether a message. Never a
/// name, a size or anything the visitor wrote.
fn notice(saved: &[SavedFile]) -> String {
    let messages = saved.iter().filter(|file| file.is_message).count();
    let files = saved.len() - messages;
    let files = match files {
        0 => None,
        1 => Some("1 file".to_owned()),
        n => Some(format!("{n} files")),
    };
    let what = match (files, messages > 0) {
        (Some(files), true) => format!("{files} and a message"),
        (Some(files), false) => files,
        (None, _) => "a message".to_owned(),
    };
    format!("{what} submitted")
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
