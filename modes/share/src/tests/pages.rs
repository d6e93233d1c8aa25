//! Tests of the pages as a visitor's browser gets them: escaping on every page, sizes in the
//! sdk's one format, and the style sheet served by the sdk's asset helper.

use std::fs::File;

use onionhost_sdk::axum::http::{Method, StatusCode, header};

use super::{request, tab};

/// The elements the hostile names below would open if anything were not escaped (a quote
/// closing an attribute first, or a title closing `<title>`).
const MARKUP: [&str; 3] = ["<script", "<img", "<svg"];

/// Regression (issue 9): the pages were built with `format!` and an `escape()` call at each
/// value, so one forgotten call was an XSS. They are maud templates now, which escape every
/// value; this checks that a hostile title, zip name, folder name and file name reach every
/// kind of page (the list of shared items, a folder's listing with its breadcrumbs, the
/// message pages of 400, 404 and 410) as text.
#[tokio::test]
async fn a_hostile_title_zip_name_and_file_names_are_text_on_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("\"><svg onload=alert(1)>");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("<img src=x onerror=alert(2)>.txt"), "x").unwrap();
    let loose = dir.path().join("<script>alert(3)<x>.txt");
    std::fs::write(&loose, "y").unwrap();
    let tab = tab(
        &[folder.clone(), loose.clone()],
        "title = \"</title><script>alert(4)</script>\"\n\
         zip_name = \"\\\"><img src=y onerror=alert(5)>.zip\"",
    );
    // After the start: its page is the 410's.
    std::fs::write(&loose, "changed, longer").unwrap();
    let title = "&lt;/title&gt;&lt;script&gt;alert(4)&lt;/script&gt;";
    let folder_url = "/files/%22%3E%3Csvg%20onload%3Dalert%281%29%3E/";
    for (uri, status, shown) in [
        (
            "/",
            StatusCode::OK,
            &[
                "&quot;&gt;&lt;svg onload=alert(1)&gt;",
                "&lt;script&gt;alert(3)&lt;x&gt;.txt",
                "&quot;&gt;&lt;img src=y onerror=alert(5)&gt;.zip",
            ][..],
        ),
        (
            folder_url,
            StatusCode::OK,
            &[
                "&lt;img src=x onerror=alert(2)&gt;.txt",
                // The breadcrumb.
                "<bdi>&quot;&gt;&lt;svg onload=alert(1)&gt;</bdi>",
            ][..],
        ),
        ("/nothing-here", StatusCode::NOT_FOUND, &[][..]),
        ("/files/%+1", StatusCode::BAD_REQUEST, &[][..]),
        (
            "/files/%3Cscript%3Ealert%283%29%3Cx%3E.txt",
            StatusCode::GONE,
            &[][..],
        ),
    ] {
        let (got, headers, body) = request(&tab, Method::GET, uri, &[]).await;
        assert_eq!(got, status, "{uri}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let page = String::from_utf8(body)
            .unwrap()
            .replacen(onionhost_sdk::page::LOGO_IMG, "", 1);
        for markup in MARKUP {
            assert!(!page.contains(markup), "{uri} has {markup}: {page}");
        }
        assert!(
            page.contains(&format!("<title>{title}</title>")),
            "{uri}: {page}"
        );
        assert!(page.contains(&format!("<h1>{title}</h1>")), "{uri}: {page}");
        for text in shown {
            assert!(page.contains(text), "{uri} lacks {text}: {page}");
        }
    }
}

/// Regression (issue 12): a share of many GiB said nothing of what that means over Tor. From
/// 1 GiB on, the page says how large it is and that a stopped download can be resumed.
#[tokio::test]
async fn a_large_share_gets_a_note_on_its_size_and_on_resuming() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    // Sparse: no disk space.
    File::create(&big).unwrap().set_len(5 << 30).unwrap();
    let big_tab = tab(&[big], "");
    let (_, _, body) = request(&big_tab, Method::GET, "/", &[]).await;
    let page = String::from_utf8(body).unwrap();
    let note = page
        .split("<p class=\"note\" id=\"large-share\">")
        .nth(1)
        .expect("a note on the size")
        .split("</p>")
        .next()
        .unwrap();
    assert!(note.contains("a large download (5 GiB)"), "{note}");
    assert!(note.contains("Resume"), "{note}");

    let small = dir.path().join("small.txt");
    std::fs::write(&small, "x").unwrap();
    let small_tab = tab(&[small], "");
    let (_, _, body) = request(&small_tab, Method::GET, "/", &[]).await;
    let page = String::from_utf8(body).unwrap();
    assert!(!page.contains("large-share"), "{page}");
}

/// Sizes read as everywhere in onionhost (the sdk's `ByteSize`): `60 MiB`, not `60.0 MiB`.
#[tokio::test]
async fn sizes_on_the_pages_are_the_sdk_format() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    // Sparse: no disk space.
    File::create(&big).unwrap().set_len(60 << 20).unwrap();
    let small = dir.path().join("small.txt");
    std::fs::write(&small, [0; 1536]).unwrap();
    let tab = tab(&[big, small], "");
    let (_, _, body) = request(&tab, Method::GET, "/", &[]).await;
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("<td class=\"size\">60 MiB</td>"), "{page}");
    assert!(page.contains("<td class=\"size\">1.5 KiB</td>"), "{page}");
    assert!(page.contains("2 files, 60 MiB in all."), "{page}");
}

/// The sdk's shared files are the share's too: no browser logs a `404` for its icon.
#[tokio::test]
async fn the_favicon_and_the_logo_are_served() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let tab = tab(&[dir.path().join("a.txt")], "");
    for (path, asset) in [
        ("/favicon.ico", &onionhost_sdk::page::FAVICON),
        (onionhost_sdk::page::LOGO_PATH, &onionhost_sdk::page::LOGO),
    ] {
        let (status, _, body) = request(&tab, Method::GET, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, asset.bytes(), "{path}");
    }
}

/// The style sheet is the sdk's one, served as an asset: a strong ETag, and `304` without a
/// body for a browser that kept it.
#[tokio::test]
async fn the_style_sheet_is_an_asset_with_an_etag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let tab = tab(&[dir.path().join("a.txt")], "");
    let (status, headers, body) =
        request(&tab, Method::GET, onionhost_sdk::page::STYLE_PATH, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert_eq!(body, onionhost_sdk::page::STYLE.bytes());
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let (status, headers, body) = request(
        &tab,
        Method::GET,
        onionhost_sdk::page::STYLE_PATH,
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(headers[header::ETAG], etag.as_str());
    assert!(body.is_empty());
    let (_, _, body) = request(&tab, Method::GET, "/", &[]).await;
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("<link rel=\"stylesheet\" href=\"/onionhost%2Fstyle.css\">")
    );
}
