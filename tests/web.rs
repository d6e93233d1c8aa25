//! HTTP helpers for the tests of modes that serve pages and files (share, website): a client
//! with the tests' deadline, raw requests that no client tidies, headers and links.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::host::DEADLINE;

/// A client whose every request gives up after [`DEADLINE`].
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DEADLINE)
        .build()
        .expect("client")
}

/// `GET url` with `headers`; panics if no answer comes.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

/// The value of header `name`; panics when there is none.
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("ASCII header")
        .to_owned()
}

/// The `href`s of a page.
pub fn links(page: &str) -> Vec<String> {
    regex::Regex::new(r#"href="([^"]*)""#)
        .expect("regex")
        .captures_iter(page)
        .map(|c| c[1].to_owned())
        .collect()
}

/// Sends `GET target` as raw bytes to the tab at `url` (no client tidies the path: `..`
/// and `%2e%2e` arrive as written) and returns the status and the whole answer.
pub async fn raw_get(url: &str, target: &str) -> (u16, String) {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    (status, answer)
}
