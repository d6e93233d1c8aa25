//! Why an upload was refused or failed: the limit it went over, the status and code the
//! visitor gets, and whether the rest of its request is worth reading.

use std::io;

use onionhost_sdk::axum::http::StatusCode;

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
    #[error("the visitor has max_concurrent_uploads_per_visitor uploads in progress")]
    VisitorBusy,
    #[error("too many uploads this minute")]
    RateLimited,
    #[error("the visitor sent nothing for too long")]
    IdleTimeout,
    #[error("the upload was slower than min_upload_rate")]
    TooSlow,
    #[error("could not {action}")]
    Io {
        action: &'static str,
        #[source]
        source: io::Error,
    },
}

impl UploadError {
    pub(super) fn io(action: &'static str) -> impl FnOnce(io::Error) -> Self {
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
            UploadError::Busy | UploadError::VisitorBusy => StatusCode::SERVICE_UNAVAILABLE,
            UploadError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            UploadError::IdleTimeout | UploadError::TooSlow => StatusCode::REQUEST_TIMEOUT,
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
            UploadError::VisitorBusy => "max_concurrent_uploads_per_visitor",
            UploadError::RateLimited => "rate_limited",
            UploadError::IdleTimeout => "timeout",
            UploadError::TooSlow => "min_upload_rate",
            UploadError::Io { .. } => "server_error",
        }
    }

    /// Whether the rest of the request is worth reading (when it is small) so that the
    /// visitor's browser is still listening when the answer comes: the request itself is fine
    /// to read, the visitor just must not have its data kept. A stalled, slow or malformed
    /// request is not read further.
    pub(super) fn worth_draining(&self) -> bool {
        !matches!(
            self,
            UploadError::Malformed(_) | UploadError::IdleTimeout | UploadError::TooSlow
        )
    }
}
