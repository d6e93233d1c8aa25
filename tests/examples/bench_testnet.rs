//! The local Tor test network for `bench/overtor`: starts the tests' network
//! ([`Testnet::start_with`]) in this process, prints one JSON line with what the benchmark needs
//! (the client's SOCKS port, the network file for the host's `--tor-network`, the torrc lines
//! for more tor processes, the link delay and its measured round trip), then keeps the network
//! up until its standard input closes (the benchmark holds the other end), and stops it.
//!
//! ```sh
//! cargo run -p onionhost-tests --example bench_testnet -- [--delay-ms N] [--consensus-params "cc_alg=2"]
//! ```

use std::io::{Read as _, Write as _};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use onionhost_tests::testnet::{NetworkOptions, Testnet};

fn main() -> Result<()> {
    let mut options = NetworkOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--delay-ms" => {
                let ms: u64 = value.parse().context("--delay-ms: milliseconds")?;
                if ms > 1000 {
                    bail!("--delay-ms: at most 1000");
                }
                options.link_delay = (ms > 0).then(|| Duration::from_millis(ms));
            }
            "--consensus-params" => options.consensus_params = value,
            _ => bail!("unknown flag {flag} (--delay-ms N, --consensus-params \"a=1 b=2\")"),
        }
    }
    let net = Testnet::start_with(&options)?;
    let delay = net.link_delay()?;
    let ready = serde_json::json!({
        "socks": net.socks_addr().to_string(),
        "network_file": net.network_file(),
        "network_torrc": net.network_torrc(),
        "tor": net.tor_binary(),
        "cold_start_s": net.cold_start().as_secs_f64(),
        "timeline": net.timeline(),
        "delay_ms": delay.map_or(0.0, |(d, _)| d.as_secs_f64() * 1000.0),
        "proxy_rtt_ms": delay.map(|(_, rtt)| rtt.as_secs_f64() * 1000.0),
        "consensus_params": options.consensus_params,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{ready}")?;
    out.flush()?;
    drop(out);
    // Until the benchmark closes our standard input (or exits, however it exits).
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut sink);
    drop(net);
    Ok(())
}
