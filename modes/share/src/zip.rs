//! The "download all" zip: a virtual archive laid out when the tab is built, whose bytes are
//! produced on demand for any byte range, reading the shared files as it goes.
//!
//! Every entry is STORED (not compressed). That is what makes the archive's length known
//! before a byte is read (so `Content-Length` is exact and the first byte goes out at once),
//! its bytes the same for the same share (so a strong ETag, `Range` and `If-Range` work), and
//! a range at any offset cheap to serve (file data is read straight from its offset). It also
//! costs no CPU: files people share are mostly already compressed (photos, videos, archives),
//! and over Tor the link, not the disk, is the bottleneck. CRC-32s are not known in advance:
//! each file's header has bit 3 set and its CRC follows its data in a data descriptor,
//! computed while the data streams (the header still carries the sizes, which are known). A CRC, once computed, is kept for the life of the tab, so
//! a resumed download only re-reads the file it was cut off in.
//!
//! Written here rather than taken from a crate: streaming zip writers (`zipit`, stored
//! entries with the size computed in advance, is the closest) produce an archive front to
//! back only, whereas `Range` needs any byte range of it, and `zipit` has no folders.
//!
//! Layout: entries in the order of [`Tree::nodes`] (depth first, names sorted), folders as
//! `name/` entries (so empty folders survive), names in UTF-8 (flag bit 11), times from each
//! file's modification time (DOS time in UTC, plus the extended-timestamp field). Zip64
//! records are written exactly where the format needs them: an entry of 4 GiB or more, an
//! entry starting beyond 4 GiB, more than 65,534 entries, or a central directory beyond 4 GiB.

use std::io;
use std::sync::{Mutex, OnceLock};

use onionhost_sdk::files::{Fnv, Gone, Kind, NoLongerServed, ServedFile, Tree};

/// The most a 32-bit field can hold; this value itself means "see the Zip64 field".
const MAX32: u64 = 0xFFFF_FFFF;
/// The most entries the classic end record can count (0xFFFF means "see Zip64").
const MAX16: u64 = 0xFFFF;
/// Bumped whenever the archive's bytes change for the same share, so that old ETags die.
const LAYOUT_VERSION: u8 = 2;

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END_SIG: u32 = 0x0605_4b50;

/// General purpose flags: bit 3 (sizes and CRC in a data descriptor), bit 11 (UTF-8 names).
const FLAGS_FILE: u16 = 1 << 3 | 1 << 11;
const FLAGS_DIR: u16 = 1 << 11;
/// "Made by" Unix (3), spec version 4.5.
const VERSION_MADE_BY: u16 = 3 << 8 | 45;
/// The extended timestamp field: id, length 5, flags (mtime present), mtime.
const EXT_TIME_LEN: u64 = 9;
const ZIP64_END_LEN: u64 = 56;
const ZIP64_LOCATOR_LEN: u64 = 20;
const END_LEN: u64 = 22;

/// One entry of the archive.
#[derive(Debug)]
struct Entry {
    /// Its node in the index.
    node: usize,
    /// `path/of/file` or `path/of/folder/`.
    name: Vec<u8>,
    is_dir: bool,
    size: u64,
    /// Where its local header starts.
    offset: u64,
    /// Where its central directory record starts, from the start of the central directory.
    central_offset: u64,
    unix_mode: u32,
    mtime: u32,
    dos_time: u16,
    dos_date: u16,
}

impl Entry {
    fn zip64_size(&self) -> bool {
        self.size >= MAX32
    }

    fn zip64_offset(&self) -> bool {
        self.offset >= MAX32
    }

    fn local_len(&self) -> u64 {
        30 + self.name.len() as u64 + EXT_TIME_LEN + if self.zip64_size() { 20 } else { 0 }
    }

    fn data_offset(&self) -> u64 {
        self.offset + self.local_len()
    }

    fn descriptor_len(&self) -> u64 {
        match (self.is_dir, self.zip64_size()) {
            (true, _) => 0,
            (false, false) => 16,
            (false, true) => 24,
        }
    }

    fn end(&self) -> u64 {
        self.data_offset() + self.size + self.descriptor_len()
    }

    fn zip64_central_fields(&self) -> u64 {
        u64::from(self.zip64_size()) * 2 + u64::from(self.zip64_offset())
    }

    fn central_len(&self) -> u64 {
        let zip64 = match self.zip64_central_fields() {
            0 => 0,
            n => 4 + 8 * n,
        };
        46 + self.name.len() as u64 + EXT_TIME_LEN + zip64
    }

    fn version_needed(&self) -> u16 {
        if self.zip64_size() || self.zip64_offset() {
            45
        } else {
            20
        }
    }

    fn flags(&self) -> u16 {
        if self.is_dir { FLAGS_DIR } else { FLAGS_FILE }
    }

    fn local_header(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(usize::try_from(self.local_len()).unwrap_or(0));
        put32(&mut b, LOCAL_HEADER_SIG);
        put16(&mut b, self.version_needed());
        put16(&mut b, self.flags());
        put16(&mut b, 0); // stored
        put16(&mut b, self.dos_time);
        put16(&mut b, self.dos_date);
        // The CRC follows the data (bit 3). The sizes are known, so they are here too (the
        // format allows zeros): a reader going front to back, without the central
        // directory, can then tell where a stored entry's data ends.
        put32(&mut b, 0);
        let size32 = self.size32();
        put32(&mut b, size32);
        put32(&mut b, size32);
        put16(&mut b, len16(self.name.len()));
        let extra = EXT_TIME_LEN + if self.zip64_size() { 20 } else { 0 };
        put16(&mut b, len16(extra as usize));
        b.extend_from_slice(&self.name);
        self.put_ext_time(&mut b);
        if self.zip64_size() {
            put16(&mut b, 0x0001);
            put16(&mut b, 16);
            put64(&mut b, self.size);
            put64(&mut b, self.size);
        }
        b
    }

    /// The size as the 32-bit fields hold it: `u32::MAX` when the Zip64 field holds it.
    fn size32(&self) -> u32 {
        if self.zip64_size() {
            u32::MAX
        } else {
            low32(self.size)
        }
    }

    fn descriptor(&self, crc: u32) -> Vec<u8> {
        let mut b = Vec::with_capacity(24);
        put32(&mut b, DESCRIPTOR_SIG);
        put32(&mut b, crc);
        if self.zip64_size() {
            put64(&mut b, self.size);
            put64(&mut b, self.size);
        } else {
            put32(&mut b, low32(self.size));
            put32(&mut b, low32(self.size));
        }
        b
    }

    fn central(&self, crc: u32) -> Vec<u8> {
        let mut b = Vec::with_capacity(usize::try_from(self.central_len()).unwrap_or(0));
        put32(&mut b, CENTRAL_SIG);
        put16(&mut b, VERSION_MADE_BY);
        put16(&mut b, self.version_needed());
        put16(&mut b, self.flags());
        put16(&mut b, 0);
        put16(&mut b, self.dos_time);
        put16(&mut b, self.dos_date);
        put32(&mut b, crc);
        let size32 = self.size32();
        put32(&mut b, size32);
        put32(&mut b, size32);
        put16(&mut b, len16(self.name.len()));
        let zip64_fields = self.zip64_central_fields();
        let zip64_len = if zip64_fields == 0 {
            0
        } else {
            4 + 8 * zip64_fields
        };
        put16(&mut b, len16((EXT_TIME_LEN + zip64_len) as usize));
        put16(&mut b, 0); // comment
        put16(&mut b, 0); // disk
        put16(&mut b, 0); // internal attributes
        let dos_dir = if self.is_dir { 0x10 } else { 0 };
        put32(&mut b, self.unix_mode << 16 | dos_dir);
        let offset32 = if self.zip64_offset() {
            u32::MAX
        } else {
            low32(self.offset)
        };
        put32(&mut b, offset32);
        b.extend_from_slice(&self.name);
        self.put_ext_time(&mut b);
        if zip64_fields > 0 {
            put16(&mut b, 0x0001);
            put16(&mut b, len16((8 * zip64_fields) as usize));
            if self.zip64_size() {
                put64(&mut b, self.size);
                put64(&mut b, self.size);
            }
            if self.zip64_offset() {
                put64(&mut b, self.offset);
            }
        }
        b
    }

    fn put_ext_time(&self, b: &mut Vec<u8>) {
        put16(b, 0x5455);
        put16(b, 5);
        b.push(1);
        put32(b, self.mtime);
    }
}

/// The layout of the archive of one share, and the CRC-32s learnt so far.
#[derive(Debug)]
pub(crate) struct ZipLayout {
    entries: Vec<Entry>,
    crcs: Vec<OnceLock<u32>>,
    /// Held while a whole file is read for its CRC.
    hashing: Mutex<()>,
    central_start: u64,
    central_len: u64,
    len: u64,
    etag: String,
}

/// Where a range's bytes go. Returning an error stops the production (the visitor left).
pub(crate) trait Sink {
    /// Takes the next bytes of the range.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Whether nobody waits for the bytes any more (checked while hashing, which sends
    /// nothing for a long time).
    fn is_abandoned(&self) -> bool;
    /// Copies exactly `len` bytes of `file`, from its current position, into the sink,
    /// feeding them to `crc` on the way when there is one. Bytes go in only once
    /// [`ServedFile::read_into`] has vouched for them.
    fn copy_from(
        &mut self,
        file: &mut ServedFile,
        len: u64,
        crc: Option<&mut crc32fast::Hasher>,
    ) -> io::Result<()>;
}

impl ZipLayout {
    /// Lays out the archive of `index`. Reads no file.
    pub(crate) fn new(index: &Tree) -> Self {
        let mut entries = Vec::with_capacity(index.nodes.len().saturating_sub(1));
        let mut offset = 0u64;
        let mut etag = Fnv::new();
        etag.write(&[LAYOUT_VERSION]);
        for (id, node) in index.nodes.iter().enumerate().skip(1) {
            let (is_dir, size, unix_mode, mut name) = match &node.kind {
                Kind::Dir { .. } => (true, 0, 0o040_755, node.rel.clone().into_bytes()),
                Kind::File(file) => {
                    let mode = if file.executable {
                        0o100_755
                    } else {
                        0o100_644
                    };
                    (false, file.size, mode, node.rel.clone().into_bytes())
                }
            };
            if is_dir {
                name.push(b'/');
            }
            let mtime = u32::try_from(node.mtime.0.max(0)).unwrap_or(u32::MAX);
            let (dos_time, dos_date) = dos_datetime(node.mtime.0);
            let entry = Entry {
                node: id,
                name,
                is_dir,
                size,
                offset,
                central_offset: 0,
                unix_mode,
                mtime,
                dos_time,
                dos_date,
            };
            etag.write(&entry.name);
            etag.write(&[0]);
            etag.write(&size.to_le_bytes());
            etag.write(&node.mtime.0.to_le_bytes());
            etag.write(&node.mtime.1.to_le_bytes());
            etag.write(&unix_mode.to_le_bytes());
            offset = entry.end();
            entries.push(entry);
        }
        let central_start = offset;
        let mut central_len = 0;
        for entry in &mut entries {
            entry.central_offset = central_len;
            central_len += entry.central_len();
        }
        let mut layout = Self {
            crcs: entries.iter().map(|_| OnceLock::new()).collect(),
            hashing: Mutex::new(()),
            entries,
            central_start,
            central_len,
            len: 0,
            etag: String::new(),
        };
        layout.len = central_start + central_len + layout.end_records_len();
        layout.etag = format!("\"zip-{:016x}-{:x}\"", etag.finish(), layout.len);
        layout
    }

    /// The archive's length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The archive's strong ETag, quoted.
    pub(crate) fn etag(&self) -> &str {
        &self.etag
    }

    fn needs_zip64_end(&self) -> bool {
        self.entries.len() as u64 >= MAX16
            || self.central_len >= MAX32
            || self.central_start >= MAX32
    }

    fn end_records_len(&self) -> u64 {
        END_LEN
            + if self.needs_zip64_end() {
                ZIP64_END_LEN + ZIP64_LOCATOR_LEN
            } else {
                0
            }
    }

    fn end_records(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(98);
        let count = self.entries.len() as u64;
        let zip64_end_at = self.central_start + self.central_len;
        if self.needs_zip64_end() {
            put32(&mut b, ZIP64_END_SIG);
            put64(&mut b, ZIP64_END_LEN - 12);
            put16(&mut b, VERSION_MADE_BY);
            put16(&mut b, 45);
            put32(&mut b, 0);
            put32(&mut b, 0);
            put64(&mut b, count);
            put64(&mut b, count);
            put64(&mut b, self.central_len);
            put64(&mut b, self.central_start);
            put32(&mut b, ZIP64_LOCATOR_SIG);
            put32(&mut b, 0);
            put64(&mut b, zip64_end_at);
            put32(&mut b, 1);
        }
        put32(&mut b, END_SIG);
        put16(&mut b, 0);
        put16(&mut b, 0);
        let count16 = u16::try_from(count.min(MAX16)).unwrap_or(u16::MAX);
        put16(&mut b, count16);
        put16(&mut b, count16);
        put32(&mut b, low32(self.central_len.min(MAX32)));
        put32(&mut b, low32(self.central_start.min(MAX32)));
        put16(&mut b, 0);
        b
    }

    /// Produces the bytes `start..end` (end exclusive) of the archive into `sink`.
    pub(crate) fn write_range(
        &self,
        index: &Tree,
        start: u64,
        end: u64,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let end = end.min(self.len);
        let mut out = Clipped {
            pos: start,
            end,
            sink,
        };
        let first = self.entries.partition_point(|e| e.end() <= start);
        for (i, entry) in self.entries.iter().enumerate().skip(first) {
            if out.done() {
                return Ok(());
            }
            out.emit(entry.offset, &entry.local_header())?;
            if entry.is_dir {
                continue;
            }
            let data = entry.data_offset();
            let descriptor = data + entry.size;
            let known = self.crcs[i].get().copied();
            let mut hasher = None;
            if out.end > descriptor && known.is_none() {
                // The range may start inside (or after) the data: hash what it skips.
                let skipped = out.pos.saturating_sub(data).min(entry.size);
                let mut h = crc32fast::Hasher::new();
                if skipped > 0 {
                    hash_file(index, entry, skipped, &mut h, &*out.sink)?;
                }
                hasher = Some(h);
            } else if out.end > descriptor && out.pos <= data {
                // All the data goes out and the CRC is known: check the bytes against it, so
                // that a file rewritten in place since that CRC was learnt (even one whose
                // modification time was put back) ends the download rather than completes an
                // archive whose entry fails its check. Hashing costs far less than Tor.
                hasher = Some(crc32fast::Hasher::new());
            }
            if out.pos < descriptor && out.end > data {
                let from = out.pos.max(data);
                let to = out.end.min(descriptor);
                let mut file = ServedFile::open(index, entry.node)?;
                file.seek_to(from - data)?;
                out.sink.copy_from(&mut file, to - from, hasher.as_mut())?;
                out.pos = to;
            }
            if out.done() {
                return Ok(());
            }
            let crc = match (hasher, known) {
                (Some(h), Some(known)) => {
                    if h.finalize() != known {
                        return Err(NoLongerServed::error(entry.node, Gone::Changed));
                    }
                    known
                }
                (Some(h), None) => *self.crcs[i].get_or_init(|| h.finalize()),
                (None, _) => self.crc(index, i, &*out.sink)?,
            };
            out.emit(descriptor, &entry.descriptor(crc))?;
        }
        if out.done() {
            return Ok(());
        }
        let first = self
            .entries
            .partition_point(|e| self.central_start + e.central_offset + e.central_len() <= start);
        for (i, entry) in self.entries.iter().enumerate().skip(first) {
            if out.done() {
                return Ok(());
            }
            let crc = self.crc(index, i, &*out.sink)?;
            out.emit(
                self.central_start + entry.central_offset,
                &entry.central(crc),
            )?;
        }
        out.emit(self.central_start + self.central_len, &self.end_records())
    }

    /// Tells the layout the CRC of entry `i`, as if a download had computed it.
    #[cfg(test)]
    pub(crate) fn seed_crc_for_tests(&self, i: usize, crc: u32) {
        let _ = self.crcs[i].set(crc);
    }

    /// The CRC-32 of entry `i`, reading its file if it was never read whole before.
    ///
    /// One file at a time is read for its CRC: requests that need the same CRCs wait for
    /// the one computing them instead of reading the same files side by side.
    fn crc(&self, index: &Tree, i: usize, sink: &dyn Sink) -> io::Result<u32> {
        let entry = &self.entries[i];
        if entry.is_dir {
            return Ok(0);
        }
        if let Some(crc) = self.crcs[i].get() {
            return Ok(*crc);
        }
        let _one_at_a_time = self
            .hashing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(crc) = self.crcs[i].get() {
            return Ok(*crc);
        }
        let mut hasher = crc32fast::Hasher::new();
        hash_file(index, entry, entry.size, &mut hasher, sink)?;
        Ok(*self.crcs[i].get_or_init(|| hasher.finalize()))
    }
}

/// The bytes of the range that are still to be produced, and where production stands.
struct Clipped<'a> {
    pos: u64,
    end: u64,
    sink: &'a mut dyn Sink,
}

impl Clipped<'_> {
    fn done(&self) -> bool {
        self.pos >= self.end
    }

    /// Emits the part of `bytes` (which sit at `at` in the archive) that falls in the range.
    fn emit(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        let lo = self.pos.max(at);
        let hi = self.end.min(at + bytes.len() as u64);
        if lo < hi {
            let from = usize::try_from(lo - at).map_err(io::Error::other)?;
            let to = usize::try_from(hi - at).map_err(io::Error::other)?;
            self.sink.write(&bytes[from..to])?;
            self.pos = hi;
        }
        Ok(())
    }
}

/// Feeds the first `len` bytes of the entry's file to `hasher`; gives up when `sink` is
/// abandoned. A file that changes while it is read gives an error, never a CRC of mixed
/// bytes that would be remembered for the life of the tab.
fn hash_file(
    index: &Tree,
    entry: &Entry,
    len: u64,
    hasher: &mut crc32fast::Hasher,
    sink: &dyn Sink,
) -> io::Result<()> {
    const PIECE: u64 = 256 * 1024;
    let mut file = ServedFile::open(index, entry.node)?;
    let mut buf = Vec::with_capacity(PIECE as usize);
    let mut left = len;
    while left > 0 {
        if sink.is_abandoned() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the visitor went away",
            ));
        }
        let want = left.min(PIECE);
        buf.clear();
        file.read_into(&mut buf, want)?;
        hasher.update(&buf);
        left -= want;
    }
    Ok(())
}

/// The DOS time and date of a Unix time, in UTC, clamped to the years DOS can say (1980-2107).
fn dos_datetime(unix: i64) -> (u16, u16) {
    const MIN: i64 = 315_532_800; // 1980-01-01
    const MAX: i64 = 4_354_819_199; // 2107-12-31 23:59:59
    let t = unix.clamp(MIN, MAX);
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let time = ((secs / 3600) << 11) | ((secs % 3600 / 60) << 5) | ((secs % 60) / 2);
    let date = ((year - 1980) << 9) | (month << 5) | day;
    (
        u16::try_from(time).unwrap_or(0),
        u16::try_from(date).unwrap_or(0),
    )
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn low32(v: u64) -> u32 {
    u32::try_from(v & MAX32).unwrap_or(u32::MAX)
}

/// A length known to fit 16 bits (names are at most a few KiB on every Unix).
fn len16(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}
