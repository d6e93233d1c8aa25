//! The pages' JavaScript size formatter (`sdk/assets/bytes.js`) and `ByteSize`'s `Display`
//! give the same text: regression for receive's pages, whose script said "60.0 MiB" where
//! the page without JavaScript said "60 MiB". Needs `node` (Debian's `nodejs`): without it
//! the test fails, it does not skip.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use onionhost_sdk::ByteSize;

/// Sizes at every boundary the formatter has, and a spread in between.
fn samples() -> Vec<u64> {
    let mut sizes = vec![
        0,
        1,
        2,
        12,
        1023,
        1024,
        1025,
        1536,
        1587,
        1588,
        60 * 1024 * 1024,
    ];
    let mut unit: u64 = 1024;
    for _ in 0..6 {
        for delta in [0, 1, 51, 52, 53, 100, 101] {
            sizes.push(unit.saturating_add(delta));
            sizes.push(unit.saturating_sub(delta));
            sizes.push((unit / 20).saturating_mul(20_479).saturating_sub(delta));
        }
        unit = unit.saturating_mul(1024);
    }
    sizes.push(u64::MAX);
    sizes.push(u64::MAX - 1);
    // A deterministic spread over every magnitude.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for shift in 0..64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sizes.push(x >> shift);
    }
    sizes
}

#[test]
fn the_javascript_formatter_agrees_with_display() {
    let sizes = samples();
    let script = format!(
        "{}\nconst sizes = require('fs').readFileSync(0, 'utf8').trim().split('\\n');\n\
         for (const s of sizes) {{ console.log(onionhostBytes(BigInt(s))); }}\n",
        onionhost_sdk::size::BYTES_JS
    );
    let mut node = Command::new("node")
        .arg("-e")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("`node` is needed to check the pages' size formatter: apt-get install nodejs");
    let input: String = sizes.iter().map(|n| format!("{n}\n")).collect();
    node.stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = node.wait_with_output().unwrap();
    assert!(output.status.success(), "node failed");
    let shown = String::from_utf8(output.stdout).unwrap();
    let js: Vec<&str> = shown.lines().collect();
    assert_eq!(js.len(), sizes.len());
    for (n, js) in sizes.iter().zip(js) {
        assert_eq!(ByteSize(*n).to_string(), js, "{n} bytes");
    }
    // Numbers (not only BigInts) work too, as pages pass them.
    let number = Command::new("node")
        .arg("-e")
        .arg(format!(
            "{}\nconsole.log(onionhostBytes(62914560));",
            onionhost_sdk::size::BYTES_JS
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(number.stdout).unwrap().trim(), "60 MiB");
}
