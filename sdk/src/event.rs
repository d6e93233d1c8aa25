//! Events a tab reports to the host's console.
//!
//! Events are plain data (serde) so that they can cross the plugin boundary. They must never
//! carry chat messages, usernames, file contents or keys; file names only when the user has
//! asked for them in the mode's config.

use serde::{Deserialize, Serialize};

/// Which way a transfer goes, seen from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A visitor downloads from the host (share).
    Download,
    /// A visitor uploads to the host (receive).
    Upload,
}

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferOutcome {
    /// Every byte was transferred.
    Completed,
    /// The visitor went away, or the transfer was refused part-way.
    Cancelled,
    /// The host could not finish it: not the visitor's doing (for a download, a shared file
    /// changed, was deleted or could not be read after sharing started).
    Failed,
}

/// Something that happened in a tab, for the host's console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TabEvent {
    /// A visitor joined (e.g. a chat room); `present` is how many are there now.
    VisitorJoined {
        /// Visitors present after the join.
        present: usize,
    },
    /// A visitor left; `present` is how many are there now.
    VisitorLeft {
        /// Visitors present after the departure.
        present: usize,
    },
    /// A download or upload started.
    TransferStarted {
        /// Identifies the transfer in later events of the same tab.
        id: u64,
        /// Download or upload.
        direction: Direction,
        /// The size, when known in advance.
        total_bytes: Option<u64>,
        /// What is transferred, only when the user asked for names on the console.
        label: Option<String>,
    },
    /// Bytes moved so far in a transfer. Send it at most a few times a second.
    TransferProgress {
        /// The transfer.
        id: u64,
        /// Bytes moved so far.
        bytes: u64,
    },
    /// A transfer ended.
    TransferFinished {
        /// The transfer.
        id: u64,
        /// Bytes moved in all.
        bytes: u64,
        /// Whether it completed.
        outcome: TransferOutcome,
        /// Where an upload was saved (the upload's folder), when it was.
        saved_to: Option<String>,
    },
    /// A sentence for the user ("Sharing 3 files, 1.2 GiB"). No private data.
    Notice {
        /// The sentence.
        message: String,
    },
}
