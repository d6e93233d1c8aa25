//! Tests of the zip against an independent reader (the `zip` crate), of ranges over it, and of
//! the router in memory (HEAD, Range, stop after the first download); the pages' own tests are
//! in `tests/pages.rs`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
use onionhost_sdk::axum::body::Body;
use onionhost_sdk::axum::http::{Method, Request, StatusCode, header};
use onionhost_sdk::testing::TestTab;
use onionhost_sdk::{TabEvent, TransferOutcome};
use tower::ServiceExt;

use crate::ShareMode;
use crate::zip::{Sink, ZipLayout};
use onionhost_sdk::files::{ServedFile, Tree};

mod pages;

/// Collects a range's bytes in memory.
#[derive(Default)]
struct VecSink(Vec<u8>);

impl Sink for VecSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn is_abandoned(&self) -> bool {
        false
    }

    fn copy_from(
        &mut self,
        file: &mut ServedFile,
        len: u64,
        crc: Option<&mut crc32fast::Hasher>,
    ) -> io::Result<()> {
        let before = self.0.len();
        file.read_into(&mut self.0, len)?;
        if let Some(hasher) = crc {
            hasher.update(&self.0[before..]);
        }
        Ok(())
    }
}

fn range(layout: &ZipLayout, index: &Tree, start: u64, end: u64) -> Vec<u8> {
    let mut sink = VecSink::default();
    layout.write_range(index, start, end, &mut sink).unwrap();
    sink.0
}

/// Bytes that differ from file to file and from offset to offset.
fn content(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 31 + seed * 7 + i / 251) % 256).unwrap())
        .collect()
}

/// A share with a folder, nested folders, an empty folder, an empty file, a file larger than
/// a chunk, loose files beside the folder, a Unicode name and two items of the same name.
fn sample() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let w = |rel: &str, data: Vec<u8>| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    w("album/photo 1.jpg", content(1, 300_000));
    w("album/deep/er/notes.txt", content(2, 1000));
    w("album/ünïcödé 日本.txt", content(3, 77));
    w("album/empty.bin", Vec::new());
    std::fs::create_dir_all(root.join("album/nothing here")).unwrap();
    w("readme.txt", content(4, 12));
    w("b/readme.txt", content(5, 13));
    w("big.bin", content(6, 600_001));
    let paths = vec![
        root.join("album"),
        root.join("readme.txt"),
        root.join("b/readme.txt"),
        root.join("big.bin"),
    ];
    (dir, paths)
}

fn expected_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let r = |rel: &str| std::fs::read(root.join(rel)).unwrap();
    BTreeMap::from([
        ("album/photo 1.jpg".to_owned(), r("album/photo 1.jpg")),
        (
            "album/deep/er/notes.txt".into(),
            r("album/deep/er/notes.txt"),
        ),
        ("album/ünïcödé 日本.txt".into(), r("album/ünïcödé 日本.txt")),
        ("album/empty.bin".into(), r("album/empty.bin")),
        ("readme.txt".into(), r("readme.txt")),
        ("readme (2).txt".into(), r("b/readme.txt")),
        ("big.bin".into(), r("big.bin")),
    ])
}

/// Every file of a zip by name, and the folders.
fn unzip(bytes: Vec<u8>) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(bytes)).unwrap();
    let mut files = BTreeMap::new();
    let mut dirs = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
        let name = entry.name().unwrap().into_owned();
        if entry.is_dir() {
            dirs.push(name);
        } else {
            let mut data = Vec::new();
            // Reading to the end checks the CRC against the central directory.
            entry.read_to_end(&mut data).unwrap();
            files.insert(name, data);
        }
    }
    (files, dirs)
}

#[test]
fn the_zip_holds_every_file_byte_for_byte() {
    let (dir, paths) = sample();
    let index = Tree::of_items(&paths).unwrap();
    let layout = ZipLayout::new(&index);
    let bytes = range(&layout, &index, 0, layout.len());
    assert_eq!(
        bytes.len() as u64,
        layout.len(),
        "the announced length is exact"
    );
    let (files, dirs) = unzip(bytes);
    assert_eq!(files, expected_files(dir.path()));
    assert_eq!(
        dirs,
        [
            "album/",
            "album/deep/",
            "album/deep/er/",
            "album/nothing here/"
        ]
    );
}

#[test]
fn the_zip_is_the_same_every_time_and_any_range_of_it_is_exact() {
    let (_dir, paths) = sample();
    let index = Tree::of_items(&paths).unwrap();
    let full = {
        let layout = ZipLayout::new(&index);
        range(&layout, &index, 0, layout.len())
    };
    let layout = ZipLayout::new(&index);
    assert_eq!(layout.etag(), ZipLayout::new(&index).etag());
    let len = layout.len();
    let mut cuts = vec![0, 1, 29, 30, 31, 100, 300_000, 300_100, len - 22, len - 1];
    cuts.extend((0..len).step_by(40_009));
    cuts.sort_unstable();
    // Each range is produced by a fresh layout, which knows no CRC yet: the CRCs of entries
    // the range starts inside or after must be computed from the files.
    for &start in &cuts {
        for end in [start + 1, start + 17, start + 70_000, len] {
            let end = end.min(len);
            let fresh = ZipLayout::new(&index);
            assert_eq!(
                range(&fresh, &index, start, end),
                &full[usize::try_from(start).unwrap()..usize::try_from(end).unwrap()],
                "{start}..{end}"
            );
        }
    }
    // Pieces cut at chunk-unfriendly places and glued together give the zip.
    let mut glued = Vec::new();
    let mut at = 0;
    for step in [7, 100_003, 1, 250_000, 99_999].iter().cycle() {
        if at >= len {
            break;
        }
        let end = (at + step).min(len);
        glued.extend(range(&layout, &index, at, end));
        at = end;
    }
    assert_eq!(glued, full);
}

#[test]
fn more_than_65535_entries_use_zip64() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..65_540 {
        File::create(dir.path().join(format!("{i:05}"))).unwrap();
    }
    std::fs::write(dir.path().join("last"), b"the end").unwrap();
    let index = Tree::of_items(&[dir.path().to_owned()]).unwrap();
    let layout = ZipLayout::new(&index);
    let bytes = range(&layout, &index, 0, layout.len());
    let mut archive = zip::ZipArchive::new(io::Cursor::new(bytes)).unwrap();
    assert_eq!(archive.len(), 65_542);
    let name = format!("{}/last", index.nodes[1].name);
    let mut last = Vec::new();
    archive
        .by_name(&name)
        .unwrap()
        .read_to_end(&mut last)
        .unwrap();
    assert_eq!(last, b"the end");
}

/// Reads the virtual zip through `Read + Seek`, producing only the bytes asked for, so that
/// a zip larger than memory can be checked by an independent reader.
struct Virtual<'a> {
    layout: &'a ZipLayout,
    index: &'a Tree,
    pos: u64,
}

impl Read for Virtual<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let end = (self.pos + buf.len() as u64).min(self.layout.len());
        if self.pos >= end {
            return Ok(0);
        }
        let bytes = range(self.layout, self.index, self.pos, end);
        buf[..bytes.len()].copy_from_slice(&bytes);
        self.pos = end;
        Ok(bytes.len())
    }
}

impl Seek for Virtual<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::End(n) => self.layout.len().checked_add_signed(n).unwrap(),
            SeekFrom::Current(n) => self.pos.checked_add_signed(n).unwrap(),
        };
        Ok(self.pos)
    }
}

#[test]
fn a_file_over_4_gib_and_entries_beyond_4_gib_use_zip64() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: takes no disk space. 4 GiB + 1 needs Zip64 sizes, and pushes the next entries
    // beyond 4 GiB, which needs Zip64 offsets.
    let huge = File::create(dir.path().join("a-huge.bin")).unwrap();
    huge.set_len((4 << 30) + 1).unwrap();
    drop(huge);
    std::fs::write(dir.path().join("b-after.txt"), b"after the huge file").unwrap();
    let index = Tree::of_items(&[dir.path().to_owned()]).unwrap();
    let layout = ZipLayout::new(&index);
    // The huge file's CRC: zeros, so known without reading 4 GiB in a debug build.
    layout.seed_crc_for_tests(1, zeros_crc((4 << 30) + 1));
    let mut archive = zip::ZipArchive::new(Virtual {
        layout: &layout,
        index: &index,
        pos: 0,
    })
    .unwrap();
    let root = &index.nodes[1].name;
    {
        let huge = archive.by_name(&format!("{root}/a-huge.bin")).unwrap();
        assert_eq!(huge.size(), (4 << 30) + 1);
    }
    let mut after = archive.by_name(&format!("{root}/b-after.txt")).unwrap();
    assert!(after.header_start() > 4 << 30);
    let mut data = Vec::new();
    after.read_to_end(&mut data).unwrap();
    assert_eq!(data, b"after the huge file");
}

/// The CRC-32 of `len` zero bytes, by combining CRCs of halves.
fn zeros_crc(len: u64) -> u32 {
    let mut result = crc32fast::Hasher::new();
    let mut block = crc32fast::Hasher::new();
    block.update(&[0]);
    let mut block_len = 1u64;
    let mut left = len;
    // Binary expansion of `len`, appending blocks of 2^k zeros.
    while left > 0 {
        if left & 1 == 1 {
            result.combine(&block);
        }
        left >>= 1;
        if left > 0 {
            let copy = block.clone();
            block.combine(&copy);
            block_len *= 2;
        }
    }
    let _ = block_len;
    result.finalize()
}

#[test]
fn zeros_crc_matches_hashing() {
    for len in [0, 1, 2, 3, 1000, 65_537] {
        assert_eq!(
            zeros_crc(len),
            crc32fast::hash(&vec![0; len as usize]),
            "{len}"
        );
    }
}

fn tab(paths: &[PathBuf], extra: &str) -> TestTab {
    let list: Vec<String> = paths
        .iter()
        .map(|p| format!("{:?}", p.to_str().unwrap()))
        .collect();
    TestTab::build::<ShareMode>(&format!("paths = [{}]\n{extra}", list.join(", "))).unwrap()
}

async fn request(
    tab: &TestTab,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, onionhost_sdk::axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = tab
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn finished(tab: &TestTab) -> Vec<TransferOutcome> {
    tab.events()
        .into_iter()
        .filter_map(|e| match e {
            TabEvent::TransferFinished { outcome, .. } => Some(outcome),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn head_range_and_stop_after_the_first_whole_download() {
    let (dir, paths) = sample();
    let tab = tab(&paths, "");
    let big = std::fs::read(dir.path().join("big.bin")).unwrap();

    let (status, headers, body) = request(&tab, Method::HEAD, "/files/big.bin", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], big.len().to_string());
    assert!(body.is_empty());
    assert!(finished(&tab).is_empty(), "HEAD is no transfer");

    let (status, headers, body) = request(
        &tab,
        Method::GET,
        "/files/big.bin",
        &[("range", "bytes=10-19")],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes 10-19/{}", big.len())
    );
    assert_eq!(body, &big[10..20]);
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();

    let (status, headers, _) =
        request(&tab, Method::GET, "/download", &[("range", "bytes=0-99")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_TYPE], "application/zip");
    assert!(
        tab.stop_requests().is_empty(),
        "a piece does not stop the share"
    );

    let (status, headers, _) = request(
        &tab,
        Method::GET,
        "/files/big.bin",
        &[("range", "bytes=999999999-")],
    )
    .await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes */{}", big.len())
    );

    let (status, _, body) = request(
        &tab,
        Method::GET,
        "/files/big.bin",
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_eq!((status, body.len()), (StatusCode::PARTIAL_CONTENT, 10));
    assert!(tab.stop_requests().is_empty());

    let (status, _, body) = request(&tab, Method::GET, "/files/big.bin", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, big);
    assert_eq!(tab.stop_requests().len(), 1, "{:?}", tab.events());
    assert!(
        finished(&tab)
            .iter()
            .all(|o| *o == TransferOutcome::Completed)
    );
    // No file names on the console unless asked for.
    assert!(
        tab.events()
            .iter()
            .all(|e| !format!("{e:?}").contains("big"))
    );
}

#[tokio::test]
async fn the_whole_zip_stops_the_share_and_names_are_reported_only_when_asked() {
    let (_dir, paths) = sample();
    let tab = tab(
        &paths,
        "show_file_names_in_console = true\nzip_name = \"all.zip\"",
    );
    let (status, headers, body) = request(&tab, Method::GET, "/download", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], body.len().to_string());
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"all.zip\"; filename*=UTF-8''all.zip"
    );
    assert_eq!(tab.stop_requests().len(), 1);
    assert!(tab.events().iter().any(|e| matches!(e,
        TabEvent::TransferStarted { label: Some(l), .. } if l == "all.zip")));
    // After the stop, no new download starts.
    let (status, _, _) = request(&tab, Method::GET, "/files/readme.txt", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn keep_sharing_serves_many_downloads() {
    let (_dir, paths) = sample();
    let tab = tab(&paths, "stop_after_first_download = false");
    for _ in 0..3 {
        let (status, _, _) = request(&tab, Method::GET, "/files/readme.txt", &[]).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert!(tab.stop_requests().is_empty());
}

#[tokio::test]
async fn a_download_dropped_half_way_is_cancelled_and_does_not_stop() {
    let (_dir, paths) = sample();
    let tab = tab(&paths, "");
    let response = tab
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/files/big.bin")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    assert_eq!(finished(&tab), [TransferOutcome::Cancelled]);
    assert!(tab.stop_requests().is_empty());
}

#[tokio::test]
async fn pages_list_names_as_text_with_links() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/<b>x<i>.txt"), "x").unwrap();
    std::fs::write(dir.path().join("loose.txt"), "y").unwrap();
    let tab = tab(&[dir.path().join("d"), dir.path().join("loose.txt")], "");
    let (status, _, body) = request(&tab, Method::GET, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("href=\"/files/d/\""), "{page}");
    assert!(page.contains("href=\"/files/loose.txt\""), "{page}");
    assert!(page.contains("href=\"/download\""), "{page}");
    let (_, _, body) = request(&tab, Method::GET, "/files/d/", &[]).await;
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("&lt;b&gt;x&lt;i&gt;.txt"), "{page}");
    assert!(
        page.contains("href=\"/files/d/%3Cb%3Ex%3Ci%3E.txt\""),
        "{page}"
    );
    assert!(!page.contains("<b>"), "{page}");
    let (status, _, _) = request(&tab, Method::GET, "/files/d/..%2f..%2fetc", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn long_folders_are_listed_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let many = dir.path().join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..=onionhost_sdk::files::PAGE_SIZE {
        File::create(many.join(format!("{i:05}.txt"))).unwrap();
    }
    let tab = tab(&[many], "");
    let rows = |page: &str| page.matches("<tr class=\"file\">").count();
    let (_, _, first) = request(&tab, Method::GET, "/files/many/", &[]).await;
    let first = String::from_utf8(first).unwrap();
    assert_eq!(rows(&first), onionhost_sdk::files::PAGE_SIZE);
    assert!(first.contains("Page 1 of 2"), "{first}");
    assert!(first.contains("href=\"/files/many/?page=2\""));
    let (_, _, second) = request(&tab, Method::GET, "/files/many/?page=2", &[]).await;
    let second = String::from_utf8(second).unwrap();
    assert_eq!(rows(&second), 1);
    assert!(second.contains("01000.txt"));
    // Out-of-range or malformed page numbers show the nearest page.
    let (status, _, last) = request(&tab, Method::GET, "/files/many/?page=99", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&String::from_utf8(last).unwrap()), 1);
    let (_, _, bad) = request(&tab, Method::GET, "/files/many/?page=x", &[]).await;
    assert_eq!(
        rows(&String::from_utf8(bad).unwrap()),
        onionhost_sdk::files::PAGE_SIZE
    );
}

#[tokio::test]
async fn a_file_changed_after_the_start_is_no_longer_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("draft.txt");
    std::fs::write(&path, "version one").unwrap();
    let tab = tab(std::slice::from_ref(&path), "");
    std::fs::write(&path, "version two, longer").unwrap();
    let (status, _, body) = request(&tab, Method::GET, "/files/draft.txt", &[]).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(!String::from_utf8(body).unwrap().contains("version"));
    // The zip cannot hold it either: the download breaks instead of sending wrong bytes.
    let response = tab
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/download")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.into_body().collect().await.is_err());
    assert!(tab.stop_requests().is_empty());
    // The host's failure, not the visitor's, and said once for the file.
    assert_eq!(finished(&tab), [TransferOutcome::Failed]);
    assert_eq!(notices(&tab, "changed after sharing started"), 1);
}

/// Notices that contain `text`.
fn notices(tab: &TestTab, text: &str) -> usize {
    tab.events()
        .iter()
        .filter(|e| matches!(e, TabEvent::Notice { message } if message.contains(text)))
        .count()
}

/// A modification time long past, so that any rewrite moves it (a rewrite within the same
/// clock tick as the file's creation would not).
fn old_mtime(path: &Path) -> std::time::SystemTime {
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    set_mtime(path, old);
    old
}

fn set_mtime(path: &Path, time: std::time::SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// Overwrites every byte of the file in place (same size, no truncation), as an editor
/// saving in place or a program writing into its output file does.
fn rewrite_in_place(path: &Path) {
    use std::io::Write as _;
    let len = std::fs::metadata(path).unwrap().len();
    let mut file = File::options().write(true).open(path).unwrap();
    file.write_all(&vec![0xEE; usize::try_from(len).unwrap()])
        .unwrap();
}

async fn first_frame_then_rest(tab: &TestTab, uri: &str) -> (StatusCode, Body) {
    let response = tab
        .router
        .clone()
        .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    (status, body)
}

/// Regression (issue 9): a single-file download of a file rewritten mid-way mixed old and
/// new bytes under the old strong ETag. It is cut, and the console says the download
/// failed (the visitor did not cancel it).
#[tokio::test]
async fn a_file_rewritten_during_its_download_is_cut_and_reported_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    // Far more than the chunks read ahead of the network, so most is read after the rewrite.
    let path = dir.path().join("big.bin");
    std::fs::write(&path, content(1, 8 << 20)).unwrap();
    old_mtime(&path);
    let tab = tab(std::slice::from_ref(&path), "");
    let (status, body) = first_frame_then_rest(&tab, "/files/big.bin").await;
    assert_eq!(status, StatusCode::OK);
    rewrite_in_place(&path);
    assert!(body.collect().await.is_err(), "the download must be cut");
    assert_eq!(finished(&tab), [TransferOutcome::Failed]);
    assert!(tab.stop_requests().is_empty());
    assert_eq!(
        notices(&tab, "a shared file changed after sharing started"),
        1
    );
}

/// Regression (issue 9): a file rewritten in place at the same size during a zip download,
/// its CRC known from an earlier download, gave the whole `Content-Length` and an entry
/// that failed its CRC. The archive is cut instead.
#[tokio::test]
async fn a_zip_whose_file_is_rewritten_during_the_download_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    std::fs::write(&path, content(2, 8 << 20)).unwrap();
    std::fs::write(dir.path().join("b.txt"), "after").unwrap();
    old_mtime(&path);
    let tab = tab(
        &[dir.path().to_owned()],
        "stop_after_first_download = false",
    );
    // A first download learns every CRC.
    let (status, _, zip) = request(&tab, Method::GET, "/download", &[]).await;
    assert_eq!(status, StatusCode::OK);
    unzip(zip);
    let (_, body) = first_frame_then_rest(&tab, "/download").await;
    rewrite_in_place(&path);
    assert!(body.collect().await.is_err(), "the zip must be cut");
    assert_eq!(
        finished(&tab),
        [TransferOutcome::Completed, TransferOutcome::Failed]
    );
}

/// A sink that rewrites a shared file, then puts its old modification time back, the first
/// time it is handed bytes or asked whether the visitor is still there.
struct Saboteur {
    inner: VecSink,
    path: PathBuf,
    mtime: std::time::SystemTime,
    done: bool,
}

impl Saboteur {
    fn strike(&mut self) {
        if !std::mem::replace(&mut self.done, true) {
            rewrite_in_place(&self.path);
            set_mtime(&self.path, self.mtime);
        }
    }
}

impl Sink for Saboteur {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.strike();
        self.inner.write(bytes)
    }

    fn is_abandoned(&self) -> bool {
        false
    }

    fn copy_from(
        &mut self,
        file: &mut ServedFile,
        len: u64,
        crc: Option<&mut crc32fast::Hasher>,
    ) -> io::Result<()> {
        self.strike();
        self.inner.copy_from(file, len, crc)
    }
}

fn gone(err: &io::Error) -> Option<onionhost_sdk::files::Gone> {
    onionhost_sdk::files::NoLongerServed::of(err).map(|g| g.why)
}

/// A file rewritten in place with its old modification time put back: nothing about the
/// file tells, only its bytes. The zip checks the CRC it knows and stops before the entry's
/// data descriptor, rather than complete an archive that fails its check.
#[test]
fn a_zip_entry_that_no_longer_matches_its_known_crc_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    std::fs::write(&path, content(3, 100_000)).unwrap();
    let mtime = old_mtime(&path);
    let index = Tree::of_items(std::slice::from_ref(&path)).unwrap();
    let layout = ZipLayout::new(&index);
    unzip(range(&layout, &index, 0, layout.len()));
    let mut sink = Saboteur {
        inner: VecSink::default(),
        path,
        mtime,
        done: false,
    };
    let err = layout
        .write_range(&index, 0, layout.len(), &mut sink)
        .unwrap_err();
    assert_eq!(
        gone(&err),
        Some(onionhost_sdk::files::Gone::Changed),
        "{err}"
    );
    assert!((sink.inner.0.len() as u64) < layout.len());
}

/// A file rewritten while it is read only for its CRC gives an error, not a CRC of the
/// wrong bytes remembered for the life of the tab.
#[test]
fn a_file_rewritten_while_hashed_leaves_no_crc_behind() {
    struct HashSaboteur(std::cell::RefCell<Saboteur>);
    impl Sink for HashSaboteur {
        fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.0.get_mut().inner.write(bytes)
        }
        fn is_abandoned(&self) -> bool {
            self.0.borrow_mut().strike();
            false
        }
        fn copy_from(
            &mut self,
            file: &mut ServedFile,
            len: u64,
            crc: Option<&mut crc32fast::Hasher>,
        ) -> io::Result<()> {
            self.0.get_mut().inner.copy_from(file, len, crc)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let original = content(4, 100_000);
    std::fs::write(&path, &original).unwrap();
    let mtime = old_mtime(&path);
    let index = Tree::of_items(std::slice::from_ref(&path)).unwrap();
    let layout = ZipLayout::new(&index);
    let mut sink = HashSaboteur(std::cell::RefCell::new(Saboteur {
        inner: VecSink::default(),
        path: path.clone(),
        mtime: std::time::SystemTime::now(),
        done: false,
    }));
    // The central directory needs the CRC: the file is read whole for it.
    let err = layout
        .write_range(&index, layout.len() - 30, layout.len(), &mut sink)
        .unwrap_err();
    assert_eq!(
        gone(&err),
        Some(onionhost_sdk::files::Gone::Changed),
        "{err}"
    );
    // Put back as shared: the archive is right, so no CRC of the rewrite was kept.
    std::fs::write(&path, &original).unwrap();
    set_mtime(&path, mtime);
    let (files, _) = unzip(range(&layout, &index, 0, layout.len()));
    assert_eq!(files["f.bin"], original);
}

/// Regression (issue 9): a file deleted after the start gave 500; it is 410 like a changed
/// one, and the console says so, once.
#[tokio::test]
async fn a_deleted_file_is_gone_and_the_console_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.txt");
    std::fs::write(&path, "x").unwrap();
    let tab = tab(
        std::slice::from_ref(&path),
        "show_file_names_in_console = true",
    );
    std::fs::remove_file(&path).unwrap();
    for _ in 0..3 {
        let (status, _, _) = request(&tab, Method::GET, "/files/old.txt", &[]).await;
        assert_eq!(status, StatusCode::GONE);
    }
    assert_eq!(
        notices(&tab, "old.txt was deleted after sharing started"),
        1
    );
    assert!(finished(&tab).is_empty(), "no download started");
}

/// Regression (issue 9): `If-None-Match` with the current ETag gave 200 instead of 304, and
/// `If-Match` with a wrong ETag gave 200/206 instead of 412 (RFC 9110 §13.2.1), on files
/// and on the zip alike.
#[tokio::test]
async fn if_match_and_if_none_match_are_honoured_on_files_and_the_zip() {
    let (_dir, paths) = sample();
    let tab = tab(&paths, "stop_after_first_download = false");
    for uri in ["/files/big.bin", "/download"] {
        let (_, headers, _) = request(&tab, Method::HEAD, uri, &[]).await;
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();
        let weak = format!("W/{etag}");
        let status = |status: StatusCode, body: &[u8]| (status, body.is_empty());
        for (method, sent, expected) in [
            (
                Method::GET,
                vec![("if-none-match", etag.as_str())],
                StatusCode::NOT_MODIFIED,
            ),
            (
                Method::HEAD,
                vec![("if-none-match", etag.as_str())],
                StatusCode::NOT_MODIFIED,
            ),
            (
                Method::GET,
                vec![("if-none-match", weak.as_str())],
                StatusCode::NOT_MODIFIED,
            ),
            (
                Method::GET,
                vec![("if-none-match", "\"x\", *")],
                StatusCode::OK,
            ),
            (
                Method::GET,
                vec![("if-none-match", "*")],
                StatusCode::NOT_MODIFIED,
            ),
            (
                Method::GET,
                vec![("if-none-match", etag.as_str()), ("range", "bytes=0-9")],
                StatusCode::NOT_MODIFIED,
            ),
            (
                Method::GET,
                vec![("if-none-match", "\"old\"")],
                StatusCode::OK,
            ),
            (
                Method::GET,
                vec![("if-match", "\"old\"")],
                StatusCode::PRECONDITION_FAILED,
            ),
            (
                Method::GET,
                vec![("if-match", "\"old\""), ("range", "bytes=0-9")],
                StatusCode::PRECONDITION_FAILED,
            ),
            (
                Method::GET,
                vec![
                    ("if-match", "\"old\""),
                    ("range", "bytes=0-9"),
                    ("if-range", etag.as_str()),
                ],
                StatusCode::PRECONDITION_FAILED,
            ),
            (
                Method::GET,
                vec![("if-match", weak.as_str())],
                StatusCode::PRECONDITION_FAILED,
            ),
            (
                Method::GET,
                vec![("if-match", "\"old\""), ("if-none-match", "\"old\"")],
                StatusCode::PRECONDITION_FAILED,
            ),
            (Method::GET, vec![("if-match", "*")], StatusCode::OK),
            (
                Method::GET,
                vec![
                    ("if-match", etag.as_str()),
                    ("range", "bytes=0-9"),
                    ("if-range", etag.as_str()),
                ],
                StatusCode::PARTIAL_CONTENT,
            ),
            (
                Method::GET,
                vec![
                    ("if-match", etag.as_str()),
                    ("if-none-match", etag.as_str()),
                ],
                StatusCode::NOT_MODIFIED,
            ),
        ] {
            let (got, headers, body) = request(&tab, method.clone(), uri, &sent).await;
            assert_eq!(got, expected, "{method} {uri} {sent:?}");
            if expected == StatusCode::NOT_MODIFIED {
                assert_eq!(status(got, &body), (expected, true));
                assert_eq!(headers[header::ETAG], etag.as_str());
                assert!(!headers.contains_key(header::CONTENT_DISPOSITION));
            }
        }
    }
    // Neither a 304 nor a 412 is a download: only the 200s and the 206 above were.
    assert!(
        finished(&tab)
            .iter()
            .all(|o| *o == TransferOutcome::Completed)
    );
}

/// A sink whose visitor has gone.
struct Abandoned;

impl Sink for Abandoned {
    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn is_abandoned(&self) -> bool {
        true
    }

    fn copy_from(
        &mut self,
        _: &mut ServedFile,
        _: u64,
        _: Option<&mut crc32fast::Hasher>,
    ) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn reading_files_for_their_crcs_stops_when_the_visitor_is_gone() {
    let (_dir, paths) = sample();
    let index = Tree::of_items(&paths).unwrap();
    let layout = ZipLayout::new(&index);
    // The last bytes before the end records are central directory: they need every CRC.
    let err = layout
        .write_range(&index, layout.len() - 30, layout.len(), &mut Abandoned)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    // A range needing no CRC is unaffected.
    layout
        .write_range(&index, layout.len() - 22, layout.len(), &mut Abandoned)
        .unwrap();
}

/// A response comes back with its first bytes already read, so that the server writes the
/// head and a small file together (over Tor: one cell, not a cell for the head and one for
/// the body); the same for the zip.
#[tokio::test]
async fn a_download_comes_with_its_first_bytes_ready() {
    use futures::FutureExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("note.txt");
    std::fs::write(&path, "a small file, sent with its head").unwrap();
    let tab = tab(
        std::slice::from_ref(&path),
        "stop_after_first_download = false",
    );
    for uri in ["/files/note.txt", "/download"] {
        let response = tab
            .router
            .clone()
            .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let mut body = response.into_body();
        let first = body
            .frame()
            .now_or_never()
            .unwrap_or_else(|| panic!("{uri}: the first bytes are not ready with the head"))
            .unwrap()
            .unwrap();
        assert!(first.is_data(), "{uri}");
    }
}
