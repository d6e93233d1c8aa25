//! The local Tor test network on its own, without the host: C tor onion services in front of a
//! loopback HTTP server, reached through the network's C tor client, with and without client
//! authorization.

use std::net::{Ipv4Addr, SocketAddr};

use data_encoding::BASE32_NOPAD;
use onionhost_tests::testnet::{SocksError, Testnet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `body` with status 200 to every request on a new loopback port.
async fn serve(body: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                    if request.len() > 16 * 1024 {
                        return;
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    addr
}

fn marker() -> Vec<u8> {
    let mut body = b"onionhost testnet marker ".to_vec();
    body.extend(rand::random::<[u8; 32]>());
    body
}

#[tokio::test]
async fn the_network_file_lists_the_three_authorities() {
    let net = Testnet::shared().await.expect("local Tor network");
    eprintln!(
        "local Tor network cold start: {:?}\n{}",
        net.cold_start(),
        net.timeline()
    );
    let again = Testnet::shared().await.expect("local Tor network");
    assert!(std::ptr::eq(net, again), "one network per test process");

    let text = std::fs::read_to_string(net.network_file()).expect("network file");
    let file: toml::Table = text.parse().expect("network file is TOML");
    let section: toml::Table = net.tor_section().parse().expect("[tor] section is TOML");
    assert_eq!(section.get("tor").and_then(|t| t.as_table()), Some(&file));

    let authorities = file["authorities"].as_array().expect("authorities");
    let fallbacks = file["fallbacks"].as_array().expect("fallbacks");
    assert_eq!(authorities.len(), 3);
    assert_eq!(fallbacks.len(), 3);
    for authority in authorities {
        let v3ident = authority["v3ident"].as_str().expect("v3ident");
        assert_eq!(v3ident.len(), 40);
        assert!(v3ident.bytes().all(|b| b.is_ascii_hexdigit()));
        let address: SocketAddr = authority["address"]
            .as_str()
            .expect("address")
            .parse()
            .expect("address");
        // The DirPort serves the consensus the host's Arti will fetch.
        std::net::TcpStream::connect(address).expect("authority DirPort listens");
    }
    for fallback in fallbacks {
        assert_eq!(fallback["rsa_identity"].as_str().expect("rsa").len(), 40);
        let ed = fallback["ed_identity"].as_str().expect("ed");
        let ed = data_encoding::BASE64_NOPAD
            .decode(ed.as_bytes())
            .expect("ed_identity is unpadded base64");
        assert_eq!(ed.len(), 32);
        let orport: SocketAddr = fallback["orport"]
            .as_str()
            .expect("orport")
            .parse()
            .expect("orport");
        std::net::TcpStream::connect(orport).expect("authority ORPort listens");
    }
}

#[tokio::test]
async fn a_c_tor_onion_service_is_reached_through_the_client() {
    let net = Testnet::shared().await.expect("local Tor network");
    let body = marker();
    let target = serve(body.clone()).await;
    let started = std::time::Instant::now();
    let service = net
        .c_tor_onion_service(80, target, &[])
        .await
        .expect("onion service");
    let published = started.elapsed();
    let url = format!("http://{}/", service.onion_host());
    let (status, got) = net.get(&url).await.expect("GET through tor");
    eprintln!(
        "C tor onion service: descriptor uploaded after {published:?}, first GET after {:?}",
        started.elapsed()
    );
    assert_eq!(status, 200);
    assert_eq!(got, body);
    let (status, got) = net.curl(&url).await.expect("curl through tor");
    assert_eq!(status, 200);
    assert_eq!(got, body);
}

#[tokio::test]
async fn a_private_onion_service_needs_the_client_key() {
    let net = Testnet::shared().await.expect("local Tor network");
    let body = marker();
    let target = serve(body.clone()).await;
    let secret = x25519_dalek::StaticSecret::from(rand::random::<[u8; 32]>());
    let public = x25519_dalek::PublicKey::from(&secret);
    let service = net
        .c_tor_onion_service(80, target, &[BASE32_NOPAD.encode(public.as_bytes())])
        .await
        .expect("onion service");
    let host = service.onion_host();

    let refused = |err: anyhow::Error| {
        err.downcast_ref::<SocksError>()
            .unwrap_or_else(|| panic!("expected a SOCKS refusal, got {err:#}"))
            .code
    };
    let err = net
        .connect(host, 80)
        .await
        .expect_err("reached without the key");
    assert_eq!(refused(err), SocksError::HS_MISSING_CLIENT_AUTH);

    let wrong: [u8; 32] = rand::random();
    net.authorize(host, &BASE32_NOPAD.encode(&wrong))
        .await
        .expect("authorize a wrong key");
    let err = net
        .connect(host, 80)
        .await
        .expect_err("reached with a wrong key");
    assert_eq!(refused(err), SocksError::HS_BAD_CLIENT_AUTH);

    // Authorizing again replaces the key.
    net.authorize(host, &BASE32_NOPAD.encode(&secret.to_bytes()))
        .await
        .expect("authorize");
    let (status, got) = net
        .get(&format!("http://{host}/"))
        .await
        .expect("GET with the key");
    assert_eq!(status, 200);
    assert_eq!(got, body);

    net.deauthorize(host).await.expect("deauthorize");
    let err = net
        .connect(host, 80)
        .await
        .expect_err("reached after deauthorize");
    assert_eq!(refused(err), SocksError::HS_MISSING_CLIENT_AUTH);
}
