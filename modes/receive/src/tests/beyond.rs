//! The title, the lifetime budget, webhook notices and the encrypted drop (issue 11).

use std::io::Read as _;
use std::process::Command;
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret as _;

use super::*;

/// `dir`'s entries, hidden ones included, sorted.
fn entries(dir: &Path) -> Vec<String> {
    names_in(dir)
}

#[tokio::test]
async fn the_title_is_the_browser_tab_and_the_heading_of_every_page() {
    let tab = Tab::new("title = \"Tips for the newsroom\"");
    for path in ["/", "/nope"] {
        let (_, page) = tab.get(path).await;
        assert!(
            page.contains("<title>Tips for the newsroom</title>"),
            "{page}"
        );
        assert!(page.contains("<h1>Tips for the newsroom</h1>"), "{page}");
    }
    assert!(tab.get("/").await.1.contains("<h2>Send files</h2>"));
    let (_, page) = tab.send(multipart(&[Part::Text("hi")]), false).await;
    assert!(page.contains("<h1>Tips for the newsroom</h1>"), "{page}");
    let (_, page) = Tab::new("").get("/").await;
    assert!(page.contains("<title>onionhost receive</title>"), "{page}");
}

/// OnionShare 2.7 keeps a lifetime total: a restart must not reset `max_total_size`.
#[tokio::test]
async fn max_total_size_counts_what_earlier_runs_left_in_the_folder() {
    let limit = "max_total_size = 100";
    let first = Tab::new(limit);
    let (status, page) = first
        .send(multipart(&[Part::File("a.bin", &[1; 60])]), false)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let Tab { tab, dir } = first;
    drop(tab);
    // Files of the user's own in the folder do not count.
    std::fs::write(dir.path().join("notes.txt"), [0; 500]).unwrap();

    let second = Tab::in_dir(dir, limit, Notices::default());
    assert!(
        second.tab.events().iter().any(|event| matches!(
            event,
            TabEvent::Notice { message } if message.contains("Earlier uploads in the folder take 60 bytes")
        )),
        "{:?}",
        second.tab.events()
    );
    let (status, body) = second
        .send(multipart(&[Part::File("b.bin", &[2; 50])]), true)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("\"max_total_size\""), "{body}");
    let (status, page) = second
        .send(multipart(&[Part::File("c.bin", &[3; 40])]), false)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let Tab { tab, dir } = second;
    drop(tab);

    // Full now: a third run refuses even a byte, and says so at start.
    let third = Tab::in_dir(dir, limit, Notices::default());
    let (status, body) = third.send(multipart(&[Part::Text("x")]), true).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("\"max_total_size\""), "{body}");
}

#[tokio::test]
async fn a_complete_upload_posts_a_notice_with_no_names_sizes_or_contents() {
    let notices = Notices::default();
    let tab = Tab::in_dir(
        tempfile::tempdir().unwrap(),
        "webhook_url = \"http://abcdefgh.onion/hook\"\nmax_upload_size = 1000",
        notices.clone(),
    );
    for (parts, expected) in [
        (
            vec![
                Part::File("secret-name.txt", b"secret contents"),
                Part::File("other.txt", b"x"),
                Part::Text("secret message"),
            ],
            "2 files and a message submitted",
        ),
        (vec![Part::File("one.txt", b"1")], "1 file submitted"),
        (vec![Part::Text("hello")], "a message submitted"),
    ] {
        let (status, page) = tab.send(multipart(&parts), false).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let posted = notices.posted();
        assert_eq!(
            posted.last().unwrap(),
            &("http://abcdefgh.onion/hook".to_owned(), expected.to_owned())
        );
    }
    // A refused upload posts nothing.
    let (status, _) = tab
        .send(multipart(&[Part::File("big", &[0; 2000])]), false)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(notices.posted().len(), 3);
}

#[tokio::test]
async fn a_webhook_the_host_cannot_send_to_fails_the_tab_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let section = format!(
        "dir = {:?}\nmin_free_space = 0\nwebhook_url = \"http://example.org/hook\"",
        dir.path().to_str().unwrap()
    );
    let refusing = Notices::refusing("with --local-only, only loopback URLs");
    let err = TestTab::build_with_notices::<ReceiveMode>(&section, refusing)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("webhook_url"), "{err}");
    assert!(err.contains("only loopback URLs"), "{err}");

    // A context without a notifier (a plugin's, for now) cannot send any.
    let config: ReceiveConfig = onionhost_sdk::testing::parse_config::<ReceiveMode>(
        toml::from_str::<toml::Value>(&section).unwrap(),
    )
    .unwrap();
    let ctx = onionhost_sdk::testing::context(
        "t",
        onionhost_sdk::CancellationToken::new(),
        |_| {},
        |_| {},
    );
    let err = <ReceiveMode as onionhost_sdk::Mode>::build(config, ctx)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("plugins cannot send them yet"), "{err}");
}

/// An age identity for a test, and its recipient.
struct Key {
    file: tempfile::NamedTempFile,
    recipient: String,
}

fn key() -> Key {
    let identity = age::x25519::Identity::generate();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, identity.to_string().expose_secret().as_bytes()).unwrap();
    Key {
        file,
        recipient: identity.to_public().to_string(),
    }
}

/// Decrypts `path` with the standard `age` tool, as the README says, and reads the zip inside:
/// every entry's name and bytes.
fn decrypt(key: &Key, path: &Path) -> Vec<(String, Vec<u8>)> {
    let out = tempfile::tempdir().unwrap();
    let zip_path = out.path().join("upload.zip");
    let status = Command::new("age")
        .arg("--decrypt")
        .arg("--identity")
        .arg(key.file.path())
        .arg("--output")
        .arg(&zip_path)
        .arg(path)
        .status()
        .expect("the `age` tool is needed (Debian package `age`; tests/run installs it)");
    assert!(status.success(), "age --decrypt failed: {status}");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    (0..archive.len())
        .map(|index| {
            let mut entry = archive.by_index(index).unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            (entry.name().unwrap().into_owned(), data)
        })
        .collect()
}

#[tokio::test]
async fn an_encrypted_upload_is_one_age_file_holding_the_files_and_their_names() {
    let key = key();
    let notices = Notices::default();
    let tab = Tab::in_dir(
        tempfile::tempdir().unwrap(),
        &format!(
            "encrypt_to = [{:?}]\nwebhook_url = \"http://abcdefgh.onion/\"",
            key.recipient
        ),
        notices.clone(),
    );
    let binary: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect();
    let body = multipart(&[
        Part::File("a.bin", &binary),
        Part::File("Résumé 履歴書.pdf", b"PLAINTEXT-MARKER pdf"),
        Part::File("a.bin", b"PLAINTEXT-MARKER second"),
        Part::File("empty.txt", b""),
        Part::Text("PLAINTEXT-MARKER message"),
    ]);
    let (status, page) = tab.send(body, false).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The visitor sees what a plain tab shows.
    assert!(page.contains("4 files received"), "{page}");
    assert!(page.contains("a (1).bin"), "{page}");
    assert!(page.contains("Your message was received."), "{page}");

    // On disk: one file, named by date and time only, private, and only ciphertext.
    let names = entries(tab.dir.path());
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".zip.age"), "{names:?}");
    let sealed = tab.dir.path().join(&names[0]);
    assert!(sealed.is_file());
    assert_eq!(mode(&sealed), 0o600);
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    for plain in [&b"PLAINTEXT-MARKER"[..], "Résumé".as_bytes(), b"a.bin"] {
        assert!(
            memchr::memmem::find(&bytes, plain).is_none(),
            "{:?} in the file",
            String::from_utf8_lossy(plain)
        );
    }

    // Decrypted with the standard tool: every file and the message, byte for byte, under
    // their names (a repeated name numbered, as in a plain folder).
    let entries = decrypt(&key, &sealed);
    let expected: Vec<(String, Vec<u8>)> = vec![
        ("a.bin".into(), binary),
        ("Résumé 履歴書.pdf".into(), b"PLAINTEXT-MARKER pdf".to_vec()),
        ("a (1).bin".into(), b"PLAINTEXT-MARKER second".to_vec()),
        ("empty.txt".into(), Vec::new()),
        ("message.txt".into(), b"PLAINTEXT-MARKER message".to_vec()),
    ];
    assert_eq!(entries, expected);
    assert_eq!(
        notices.posted(),
        [(
            "http://abcdefgh.onion/".to_owned(),
            "4 files and a message submitted".to_owned()
        )]
    );

    // A second upload is a second file.
    let (status, _) = tab.send(multipart(&[Part::Text("again")]), false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entries_count(tab.dir.path()), 2);
}

fn entries_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// Nothing in plaintext touches the disk, not even while an upload is on its way, and a cut
/// upload leaves nothing behind.
#[tokio::test]
async fn an_encrypted_upload_in_progress_is_only_ciphertext_and_a_cut_one_leaves_nothing() {
    let key = key();
    let tab = Tab::new(&format!("encrypt_to = [{:?}]", key.recipient));
    let (mut sender, handler) = tab.upload_stream(4);
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; \
         filename=\"secret-name.txt\"\r\n\r\n"
    );
    sender.send(Ok(Bytes::from(head))).await.unwrap();
    let chunk = Bytes::from(b"PLAINTEXT-MARKER ".repeat(4096));
    let deadline = Instant::now() + Duration::from_secs(30);
    // Until more than the writer's buffer (1 MiB) is on disk.
    let temp = loop {
        assert!(Instant::now() < deadline, "no temporary file grew");
        sender.send(Ok(chunk.clone())).await.unwrap();
        let names = entries(tab.dir.path());
        if let Some(name) = names.first() {
            let path = tab.dir.path().join(name);
            if std::fs::metadata(&path).unwrap().len() > 2 * 1024 * 1024 {
                assert_eq!(names.len(), 1, "{names:?}");
                assert!(name.starts_with(".receiving-"), "{name}");
                break path;
            }
        }
    };
    let bytes = std::fs::read(&temp).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(memchr::memmem::find(&bytes, b"PLAINTEXT-MARKER").is_none());
    assert!(memchr::memmem::find(&bytes, b"secret-name").is_none());
    // The visitor goes away half-way.
    sender
        .send(Err(std::io::Error::other("connection lost")))
        .await
        .unwrap();
    drop(sender);
    let response = handler.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(entries(tab.dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn encrypted_bytes_on_disk_count_against_max_total_size_across_runs() {
    let key = key();
    let config = format!("encrypt_to = [{:?}]\nmax_total_size = 2000", key.recipient);
    let first = Tab::new(&config);
    let (status, _) = first
        .send(multipart(&[Part::File("a", &[7; 1000])]), false)
        .await;
    assert_eq!(status, StatusCode::OK);
    let Tab { tab, dir } = first;
    drop(tab);
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk > 1000, "{on_disk}");
    let second = Tab::in_dir(dir, &config, Notices::default());
    // What is left is 2000 less the encrypted file, not less the 1000 bytes sent.
    let left = 2000 - on_disk;
    let (status, body) = second
        .send(
            multipart(&[Part::File("b", &vec![8; left as usize + 1])]),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = second
        .send(multipart(&[Part::File("c", &vec![9; left as usize])]), true)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
