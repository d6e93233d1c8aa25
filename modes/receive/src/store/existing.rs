//! What earlier runs left in the upload folder, counted at start against `max_total_size`, so
//! that the budget is a lifetime total (as OnionShare 2.7's is) and not reset by a restart.
//!
//! Only what this mode could have written counts, so that a `dir` shared with other files
//! (say, a folder of one's own documents) does not eat the budget:
//! - in `dir`'s upload folders (named by date and time, `2026-11-27T15-42-07` or with `-2`,
//!   `-3`...), every regular file directly inside (the files, the message, and temporary
//!   `.receiving-N.part` files a killed host left behind, which do take the space);
//! - in `dir` itself, encrypted uploads (`<date and time>.zip.age`) and the temporary
//!   `.receiving-....part` files of encrypted uploads.
//!
//! The length of each file counts (what an upload reserves), symbolic links are not followed,
//! nothing deeper is visited, and the walk stops with an error after [`MAX_ENTRIES`] entries
//! rather than take unbounded time at start.

use std::io;
use std::path::Path;

use chrono::NaiveDateTime;

use super::SEALED_SUFFIX;

/// The most directory entries the walk looks at before it gives up.
pub(crate) const MAX_ENTRIES: u64 = 1_000_000;

/// Bytes of earlier uploads in `dir` (see the module's doc).
pub(crate) fn bytes_already_received(dir: &Path) -> io::Result<u64> {
    let mut entries = 0u64;
    let mut count = || {
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(io::Error::other(format!(
                "it holds more than {MAX_ENTRIES} entries, too many to count what earlier \
                 uploads left: move earlier uploads elsewhere"
            )));
        }
        Ok(())
    };
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir)? {
        count()?;
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let kind = entry.file_type()?;
        if kind.is_dir() && is_upload_name(name) {
            for inner in std::fs::read_dir(entry.path())? {
                count()?;
                let inner = inner?;
                if inner.file_type()?.is_file() {
                    total = total.saturating_add(inner.metadata()?.len());
                }
            }
        } else if kind.is_file() && is_sealed_or_temporary(name) {
            total = total.saturating_add(entry.metadata()?.len());
        }
    }
    Ok(total)
}

/// Whether `name` is an upload folder's name: a date and time, optionally `-N`.
fn is_upload_name(name: &str) -> bool {
    let Some((time, rest)) = name.split_at_checked(19) else {
        return false;
    };
    NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H-%M-%S").is_ok()
        && (rest.is_empty()
            || rest
                .strip_prefix('-')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
}

/// Whether `name`, in `dir` itself, is an encrypted upload or one's temporary file.
fn is_sealed_or_temporary(name: &str) -> bool {
    name.strip_suffix(SEALED_SUFFIX).is_some_and(is_upload_name)
        || (name.starts_with(".receiving-") && name.ends_with(".part"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn names_the_mode_writes_are_recognised() {
        assert!(is_upload_name("2026-11-27T15-42-07"));
        assert!(is_upload_name("2026-11-27T15-42-07-12"));
        assert!(!is_upload_name("2026-11-27T15-42-07-"));
        assert!(!is_upload_name("2026-11-27T15-42-07x"));
        assert!(!is_upload_name("photos"));
        assert!(!is_upload_name("2026-13-27T15-42-07"));
        assert!(is_sealed_or_temporary("2026-11-27T15-42-07-2.zip.age"));
        assert!(is_sealed_or_temporary(".receiving-17-0.part"));
        assert!(!is_sealed_or_temporary("notes.zip.age"));
        assert!(!is_sealed_or_temporary("notes.txt"));
    }

    #[test]
    fn only_what_uploads_left_counts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let upload = root.join("2026-11-27T15-42-07");
        std::fs::create_dir(&upload).unwrap();
        std::fs::write(upload.join("a.txt"), [0; 100]).unwrap();
        std::fs::write(upload.join(".receiving-1.part"), [0; 20]).unwrap();
        // Nothing deeper than an upload's own files.
        std::fs::create_dir(upload.join("deeper")).unwrap();
        std::fs::write(upload.join("deeper/x"), [0; 1000]).unwrap();
        std::fs::write(root.join("2026-11-27T15-42-08.zip.age"), [0; 7]).unwrap();
        std::fs::write(root.join(".receiving-5-0.part"), [0; 3]).unwrap();
        // Not the mode's: the user's own files and folders, and links.
        std::fs::write(root.join("notes.txt"), [0; 5000]).unwrap();
        std::fs::create_dir(root.join("photos")).unwrap();
        std::fs::write(root.join("photos/p.jpg"), [0; 5000]).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("big"), [0; 9000]).unwrap();
        symlink(elsewhere.path(), root.join("2026-11-27T15-42-09")).unwrap();
        symlink(
            elsewhere.path().join("big"),
            root.join("2026-11-27T15-42-10.zip.age"),
        )
        .unwrap();
        assert_eq!(bytes_already_received(root).unwrap(), 130);
    }
}
