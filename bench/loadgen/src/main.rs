//! Chat load generator for `bench/run`.
//!
//! One program drives both systems, so that the two numbers differ by the server only:
//! `--proto onionhost` speaks onionhost's chat protocol (`GET /ws`, JSON frames, see
//! modes/chat/README.md); `--proto onionshare` speaks the small part of Engine.IO v4 /
//! Socket.IO v5 that OnionShare's chat page uses (websocket transport only, namespace
//! `/chat`, events `text` and `chat_message`, a Flask session cookie from `GET /`).
//!
//! Run: N clients join (at most `--join-concurrency` handshakes at once); once the join
//! announcements have stopped arriving, one client sends `--messages` messages paced at
//! `--rate` per second (latency phase), then `--burst` messages back to back (throughput
//! phase). Every message carries its send time; every client that receives it records the
//! latency. One JSON object on stdout; everything is bounded by `--timeout` seconds per phase.
//!
//! onionhost announces a crowd's arrivals in one `presence` event per tick (500 ms) and lists
//! at most the first 100 members in `welcome`: the report says how many frames a client got
//! while everyone joined and the largest frame, so that a change there shows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Onionhost,
    Onionshare,
}

#[derive(Clone, Debug)]
struct Args {
    proto: Proto,
    addr: String,
    clients: usize,
    messages: usize,
    rate: f64,
    burst: usize,
    join_concurrency: usize,
    timeout: Duration,
    server_pid: Option<u32>,
    threads: usize,
    /// A SOCKS5 proxy (tor's SocksPort) to reach `addr` through, `addr` being `host:port`
    /// (an onion address) that the proxy resolves.
    socks: Option<String>,
    /// With `socks`: the clients are spread over this many circuits (tor isolates streams by
    /// SOCKS username).
    circuits: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: onionhost-loadgen --proto onionhost|onionshare --addr 127.0.0.1:PORT \
         [--clients N] [--messages M] [--rate PER_SEC] [--burst B] [--join-concurrency C] \
         [--timeout SECS] [--server-pid PID] [--threads N] [--socks 127.0.0.1:PORT] \
         [--circuits N]"
    );
    std::process::exit(2)
}

fn num<T: std::str::FromStr>(flag: &str, value: &str) -> T {
    value.parse().unwrap_or_else(|_| {
        eprintln!("bad value for {flag}: {value}");
        usage()
    })
}

fn parse_args() -> Args {
    let mut args = Args {
        proto: Proto::Onionhost,
        addr: String::new(),
        clients: 100,
        messages: 100,
        rate: 20.0,
        burst: 200,
        join_concurrency: 64,
        timeout: Duration::from_secs(120),
        server_pid: None,
        threads: 2,
        socks: None,
        circuits: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--proto" => {
                args.proto = match value.as_str() {
                    "onionhost" => Proto::Onionhost,
                    "onionshare" => Proto::Onionshare,
                    _ => usage(),
                }
            }
            "--addr" => args.addr = value.clone(),
            "--clients" => args.clients = num(&flag, &value),
            "--messages" => args.messages = num(&flag, &value),
            "--rate" => args.rate = num(&flag, &value),
            "--burst" => args.burst = num(&flag, &value),
            "--join-concurrency" => args.join_concurrency = num(&flag, &value),
            "--timeout" => args.timeout = Duration::from_secs(num(&flag, &value)),
            "--server-pid" => args.server_pid = Some(num(&flag, &value)),
            "--threads" => args.threads = num(&flag, &value),
            "--socks" => args.socks = Some(value.clone()),
            "--circuits" => args.circuits = num::<usize>(&flag, &value).max(1),
            _ => usage(),
        }
    }
    if args.addr.is_empty() || args.clients == 0 || args.rate <= 0.0 {
        usage()
    }
    args
}

/// Counters shared by every client; phases are 0 (paced) and 1 (burst).
struct Shared {
    epoch: Instant,
    frames: AtomicU64,
    /// The largest text frame any client received.
    max_frame: AtomicUsize,
    delivered: [AtomicU64; 2],
    last_recv_ns: [AtomicU64; 2],
    joined: AtomicUsize,
    failed: AtomicUsize,
    /// Joined connections that ended before the run did (closed by the server, or an error).
    dropped: AtomicUsize,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// What a client hands back at the end: its latencies (µs) per phase, and why it failed.
struct ClientResult {
    lat: [Vec<u32>; 2],
    error: Option<String>,
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .unwrap_or_else(|err| {
            eprintln!("cannot start the runtime: {err}");
            std::process::exit(1)
        });
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        frames: AtomicU64::new(0),
        max_frame: AtomicUsize::new(0),
        delivered: [AtomicU64::new(0), AtomicU64::new(0)],
        last_recv_ns: [AtomicU64::new(0), AtomicU64::new(0)],
        joined: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (out_tx, out_rx) = mpsc::unbounded_channel::<String>();
    let join_gate = Arc::new(Semaphore::new(args.join_concurrency.max(1)));
    let cpu_start = cpu_seconds(args.server_pid);

    // Join phase.
    let started = Instant::now();
    let mut out_rx = Some(out_rx);
    let mut handles = Vec::with_capacity(args.clients);
    for id in 0..args.clients {
        let outgoing = if id == 0 { out_rx.take() } else { None };
        handles.push(tokio::spawn(client(
            args.clone(),
            Arc::clone(&shared),
            Arc::clone(&join_gate),
            outgoing,
            stop_rx.clone(),
        )));
    }
    let join_deadline = started + args.timeout;
    while shared.joined.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed)
        < args.clients
        && Instant::now() < join_deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let join_secs = started.elapsed().as_secs_f64();
    let joined = shared.joined.load(Ordering::Relaxed);
    // The join announcements settle: wait for 1 s of quiet (longer than onionhost's tick, after
    // which it sends the arrivals it batched).
    let settle_start = Instant::now();
    let mut last = shared.frames.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while Instant::now() < settle_start + args.timeout {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = shared.frames.load(Ordering::Relaxed);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_millis(1000) {
            break;
        }
    }
    let settle_secs = settle_start.elapsed().as_secs_f64() - 1.0;
    let join_frames = shared.frames.load(Ordering::Relaxed);
    let cpu_joined = cpu_seconds(args.server_pid);
    let rss_joined = rss_kib(args.server_pid, "VmRSS");

    let sender_alive = joined > 0;
    let mut phases = Vec::new();
    for (phase, count, paced) in [(0usize, args.messages, true), (1, args.burst, false)] {
        if !sender_alive || count == 0 {
            phases.push(json!(null));
            continue;
        }
        let receivers = shared.joined.load(Ordering::Relaxed) - shared.dropped.load(Ordering::Relaxed);
        let expected = (receivers * count) as u64;
        let cpu0 = cpu_seconds(args.server_pid);
        let own0 = cpu_seconds(Some(std::process::id()));
        let t0 = Instant::now();
        let first_send_ns = shared.now_ns();
        for seq in 0..count {
            if paced {
                let at = t0 + Duration::from_secs_f64(seq as f64 / args.rate);
                tokio::time::sleep_until(at.into()).await;
            }
            let text = format!("bench:{phase}:{seq}:{}", shared.now_ns());
            let frame = match args.proto {
                Proto::Onionhost => format!(r#"{{"type":"send","text":"{text}"}}"#),
                Proto::Onionshare => format!(r#"42/chat,["text",{{"msg":"{text}"}}]"#),
            };
            if out_tx.send(frame).is_err() {
                break;
            }
            if !paced && seq % 64 == 63 {
                // Lets the sender's task write while the loop queues.
                tokio::task::yield_now().await;
            }
        }
        let sent_secs = t0.elapsed().as_secs_f64();
        let deadline = Instant::now() + args.timeout;
        while shared.delivered[phase].load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let cpu1 = cpu_seconds(args.server_pid);
        let own1 = cpu_seconds(Some(std::process::id()));
        let delivered = shared.delivered[phase].load(Ordering::Relaxed);
        let last_ns = shared.last_recv_ns[phase].load(Ordering::Relaxed);
        let span = (last_ns.saturating_sub(first_send_ns)) as f64 / 1e9;
        phases.push(json!({
            "messages": count,
            "receivers": receivers,
            "expected": expected,
            "delivered": delivered,
            "send_secs": sent_secs,
            "span_secs": span,
            "delivered_per_sec": if span > 0.0 { delivered as f64 / span } else { 0.0 },
            "server_cpu_secs": opt_sub(cpu1, cpu0),
            "server_cpu_pct": opt_sub(cpu1, cpu0).map(|c| 100.0 * c / t0.elapsed().as_secs_f64()),
            "loadgen_cpu_pct": opt_sub(own1, own0).map(|c| 100.0 * c / t0.elapsed().as_secs_f64()),
        }));
        // Stray frames of this phase must not count in the next: let it drain briefly.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss_end = rss_kib(args.server_pid, "VmRSS");
    let hwm = rss_kib(args.server_pid, "VmHWM");
    let cpu_end = cpu_seconds(args.server_pid);

    let _ = stop_tx.send(true);
    let mut lat: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let mut errors: Vec<String> = Vec::new();
    for handle in handles {
        // A client stuck in a handshake is given up on with the rest.
        match tokio::time::timeout(Duration::from_secs(5), handle).await {
            Ok(Ok(result)) => {
                for phase in 0..2 {
                    lat[phase].extend_from_slice(&result.lat[phase]);
                }
                if let Some(error) = result.error
                    && errors.len() < 5
                    && !errors.contains(&error)
                {
                    errors.push(error);
                }
            }
            Ok(Err(_)) | Err(_) => {}
        }
    }
    for (phase, value) in phases.iter_mut().enumerate() {
        if let Some(map) = value.as_object_mut() {
            let v = &mut lat[phase];
            v.sort_unstable();
            map.insert("p50_ms".into(), json!(percentile(v, 50.0)));
            map.insert("p99_ms".into(), json!(percentile(v, 99.0)));
            map.insert("max_ms".into(), json!(v.last().map(|m| f64::from(*m) / 1000.0)));
        }
    }
    let report = json!({
        "proto": format!("{:?}", args.proto).to_lowercase(),
        "clients": args.clients,
        "joined": joined,
        "failed": shared.failed.load(Ordering::Relaxed),
        "dropped": shared.dropped.load(Ordering::Relaxed),
        "join_secs": join_secs,
        "settle_secs": settle_secs,
        "join_frames_per_client": if joined > 0 { join_frames as f64 / joined as f64 } else { 0.0 },
        "max_frame_bytes": shared.max_frame.load(Ordering::Relaxed),
        "server_cpu_join_secs": opt_sub(cpu_joined, cpu_start),
        "server_rss_joined_kib": rss_joined,
        "server_rss_end_kib": rss_end,
        "server_hwm_kib": hwm,
        "server_cpu_total_secs": opt_sub(cpu_end, cpu_start),
        "paced": phases[0],
        "burst": phases[1],
        "errors": errors,
    });
    println!("{report}");
    // Tasks still connecting are dropped with the runtime.
    std::process::exit(0);
}

fn opt_sub(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

fn percentile(sorted: &[u32], pct: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.saturating_sub(1).min(sorted.len() - 1);
    Some(f64::from(sorted[idx]) / 1000.0)
}

/// utime + stime of a process, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // The command name may contain spaces; fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn rss_kib(pid: Option<u32>, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

async fn client(
    args: Args,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    mut outgoing: Option<mpsc::UnboundedReceiver<String>>,
    mut stop: watch::Receiver<bool>,
) -> ClientResult {
    let mut result = ClientResult {
        lat: [Vec::new(), Vec::new()],
        error: None,
    };
    let permit = gate.acquire_owned().await;
    let connected = tokio::time::timeout(args.timeout, connect_and_join(&args, &shared)).await;
    drop(permit);
    let mut ws = match connected {
        Ok(Ok(ws)) => ws,
        Ok(Err(err)) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            result.error = Some(err);
            return result;
        }
        Err(_) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            result.error = Some("join timed out".into());
            return result;
        }
    };
    shared.joined.fetch_add(1, Ordering::Relaxed);
    let prefix: &str = match args.proto {
        Proto::Onionhost => r#"{"type":"message""#,
        Proto::Onionshare => r#"42/chat,["chat_message""#,
    };
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(close))) => {
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                        result.error = Some(format!("closed by the server: {close:?}"));
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => {
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                        result.error = Some(format!("connection error: {err}"));
                        break;
                    }
                    None => {
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                        result.error = Some("connection ended".into());
                        break;
                    }
                };
                shared.frames.fetch_add(1, Ordering::Relaxed);
                shared.max_frame.fetch_max(text.len(), Ordering::Relaxed);
                let text = text.as_str();
                if args.proto == Proto::Onionshare && text == "2" {
                    // Engine.IO ping: answer or be dropped.
                    if ws.send(Message::Text("3".into())).await.is_err() {
                        break;
                    }
                    continue;
                }
                if !text.starts_with(prefix) {
                    continue;
                }
                if let Some((phase, sent_ns)) = parse_bench(text) {
                    let now = shared.now_ns();
                    let micros = now.saturating_sub(sent_ns) / 1000;
                    result.lat[phase].push(u32::try_from(micros).unwrap_or(u32::MAX));
                    shared.delivered[phase].fetch_add(1, Ordering::Relaxed);
                    shared.last_recv_ns[phase].fetch_max(now, Ordering::Relaxed);
                }
            }
            out = next_outgoing(&mut outgoing) => {
                match out {
                    Some(frame) => {
                        if let Err(err) = ws.send(Message::Text(frame.into())).await {
                            result.error = Some(format!("send failed: {err}"));
                            shared.dropped.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    None => outgoing = None,
                }
            }
        }
    }
    result
}

async fn next_outgoing(outgoing: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match outgoing {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `...bench:<phase>:<seq>:<sent_ns>"...` to (phase, sent_ns).
fn parse_bench(text: &str) -> Option<(usize, u64)> {
    let start = text.find("bench:")? + "bench:".len();
    let rest = &text[start..];
    let end = rest.find('"')?;
    let mut parts = rest[..end].split(':');
    let phase: usize = parts.next()?.parse().ok()?;
    let _seq: u64 = parts.next()?.parse().ok()?;
    let sent: u64 = parts.next()?.parse().ok()?;
    (phase < 2).then_some((phase, sent))
}

async fn connect_and_join(args: &Args, shared: &Shared) -> Result<Ws, String> {
    let (path, cookie) = match args.proto {
        Proto::Onionhost => ("/ws".to_owned(), None),
        Proto::Onionshare => (
            "/socket.io/?EIO=4&transport=websocket".to_owned(),
            Some(session_cookie(args).await?),
        ),
    };
    let mut request = format!("ws://{}{}", args.addr, path)
        .into_client_request()
        .map_err(|e| format!("bad url: {e}"))?;
    if let Some(cookie) = cookie {
        request.headers_mut().insert(
            "cookie",
            HeaderValue::from_str(&cookie).map_err(|e| format!("bad cookie: {e}"))?,
        );
    }
    let stream = open(args).await?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    // tungstenite zeroes its whole read buffer before every read (128 KiB by default): with
    // one frame per read, that memset was the load generator's largest cost. Frames larger
    // than the buffer still arrive whole (the buffer grows to the frame).
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    match args.proto {
        Proto::Onionhost => {
            ws.send(Message::Text(r#"{"type":"join"}"#.into()))
                .await
                .map_err(|e| format!("send join: {e}"))?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.starts_with(r#"{"type":"welcome""#) => {
                        shared.max_frame.fetch_max(t.len(), Ordering::Relaxed);
                        break;
                    }
                    Some(Ok(Message::Text(t))) if t.starts_with(r#"{"type":"error""#) => {
                        return Err(format!("join refused: {}", t.as_str()));
                    }
                    Some(Ok(Message::Close(c))) => return Err(format!("closed on join: {c:?}")),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("join: {e}")),
                    None => return Err("ended on join".into()),
                }
            }
        }
        Proto::Onionshare => {
            // Engine.IO open packet, then connect to the /chat namespace.
            let mut opened = false;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let t = t.as_str();
                        if !opened && t.starts_with('0') {
                            opened = true;
                            ws.send(Message::Text("40/chat,".into()))
                                .await
                                .map_err(|e| format!("send connect: {e}"))?;
                        } else if t == "2" {
                            ws.send(Message::Text("3".into()))
                                .await
                                .map_err(|e| format!("pong: {e}"))?;
                        } else if t.starts_with("40/chat,") {
                            break;
                        } else if t.starts_with("44/chat,") {
                            return Err(format!("namespace refused: {t}"));
                        }
                    }
                    Some(Ok(Message::Close(c))) => return Err(format!("closed on join: {c:?}")),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("join: {e}")),
                    None => return Err("ended on join".into()),
                }
            }
        }
    }
    Ok(ws)
}

/// OnionShare keeps the chat name in Flask's signed session cookie, set by `GET /`.
async fn session_cookie(args: &Args) -> Result<String, String> {
    let addr = &args.addr;
    let mut stream = open(args).await.map_err(|e| format!("for the cookie: {e}"))?;
    stream
        .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .map_err(|e| format!("GET /: {e}"))?;
    let mut buf = Vec::new();
    stream
        .read_to_end(&mut buf)
        .await
        .map_err(|e| format!("GET /: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().unwrap_or_default().to_owned())
        })
        .find(|kv| kv.starts_with("session="))
        .ok_or_else(|| format!("GET / set no session cookie: {}", head.lines().next().unwrap_or("")))
}

/// Which circuit the next connection goes on (with `--socks`).
static NEXT_CIRCUIT: AtomicUsize = AtomicUsize::new(0);

/// A TCP stream to `addr`, directly or through the SOCKS5 proxy (the host name resolved by the
/// proxy, and a username per circuit, so that tor spreads the clients over `--circuits`
/// circuits).
async fn open(args: &Args) -> Result<TcpStream, String> {
    let Some(socks) = &args.socks else {
        return TcpStream::connect(&args.addr)
            .await
            .map_err(|e| format!("connect: {e}"));
    };
    let (host, port) = args
        .addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or("--addr must be host:port")?;
    let mut s = TcpStream::connect(socks)
        .await
        .map_err(|e| format!("connect to the SOCKS proxy: {e}"))?;
    let io = |e: std::io::Error| format!("SOCKS: {e}");
    // Username/password authentication, only to pick the circuit.
    s.write_all(&[5, 1, 2]).await.map_err(io)?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await.map_err(io)?;
    if reply != [5, 2] {
        return Err(format!("SOCKS: method refused {reply:?}"));
    }
    let user = format!("c{}", NEXT_CIRCUIT.fetch_add(1, Ordering::Relaxed) % args.circuits);
    let mut auth = vec![1, user.len() as u8];
    auth.extend_from_slice(user.as_bytes());
    auth.extend_from_slice(&[1, b'x']);
    s.write_all(&auth).await.map_err(io)?;
    s.read_exact(&mut reply).await.map_err(io)?;
    if reply[1] != 0 {
        return Err("SOCKS: authentication refused".into());
    }
    let mut req = vec![5, 1, 0, 3, host.len() as u8];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(io)?;
    if head[1] != 0 {
        return Err(format!("SOCKS: connect refused with code {:#04x}", head[1]));
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await.map_err(io)?;
            len[0] as usize + 2
        }
        t => return Err(format!("SOCKS: address type {t}")),
    };
    let mut skip = vec![0u8; rest];
    s.read_exact(&mut skip).await.map_err(io)?;
    Ok(s)
}
