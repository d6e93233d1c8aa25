//! The live view's rows: one per tab, drawn from its status record ([`TabStatus`]), with a
//! line per transfer in flight.
//!
//! A row shows what the console may show and no more: the mode, the name, the state (and why
//! it failed), the address shortened, private or public, how many visitors (chat members) are
//! there now. Never a client key (only the show view has it, on request), a chat message or
//! name, or a file name (a transfer's row has its number, size and rate only).

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::{human_bytes, printable};
use crate::tabs::{State, TabStatus, TransferStatus};

/// How wide a transfer's progress bar is, in cells.
const BAR: usize = 24;

/// How many characters of an onion address a row keeps at each end: enough to tell tabs
/// apart, and to check against the full address the show view has.
const KEEP_START: usize = 8;
const KEEP_END: usize = 6;

/// The column heads, over the rows.
pub(crate) const HEADER: &str =
    "  MODE     NAME             STATE        ADDRESS                  ACCESS   NOW";

/// `http://<56 characters>.onion/` as `abcdefgh…uvwxyz.onion`; a local address
/// (`--local-only`) as `127.0.0.1:PORT`, which is short already.
pub(crate) fn short_address(url: &str) -> String {
    let host = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url)
        .trim_end_matches('/');
    let shown = match host.strip_suffix(".onion") {
        Some(id) if id.chars().count() > KEEP_START + KEEP_END + 1 => {
            let start: String = id.chars().take(KEEP_START).collect();
            let end: String = id.chars().skip(id.chars().count() - KEEP_END).collect();
            format!("{start}…{end}.onion")
        }
        _ => host.to_owned(),
    };
    printable(&shown)
}

/// The word for the people a tab of `mode` has now.
fn present(mode: &str, n: usize) -> String {
    match (mode, n) {
        ("chat", 1) => "1 member".to_owned(),
        ("chat", n) => format!("{n} members"),
        (_, 1) => "1 visitor".to_owned(),
        (_, n) => format!("{n} visitors"),
    }
}

/// The state as the row shows it: the word, and why for a failed tab.
fn state(status: &TabStatus) -> String {
    match (status.state, &status.why) {
        (State::Failed, Some(why)) => format!("failed: {}", printable(why)),
        (state, _) => state.as_str().to_owned(),
    }
}

/// The lines of one tab: its row, then one line per transfer in flight.
pub(crate) fn tab_lines(status: &TabStatus, selected: bool) -> Vec<Line<'static>> {
    let mark = if selected { "> " } else { "  " };
    let address = status
        .address
        .as_deref()
        .map_or_else(|| "-".to_owned(), short_address);
    let privacy = if status.private { "private" } else { "public" };
    // What the mode reports (chat: its members), else the visitors the host counts.
    let present = match (status.present, status.state) {
        (Some(n), _) => present(&status.mode, n),
        (None, State::Serving | State::Stopping) => present("", status.visitors),
        (None, _) => String::new(),
    };
    let state_style = match status.state {
        State::Failed => Style::new().add_modifier(Modifier::BOLD),
        State::Stopped | State::Stopping => Style::new().add_modifier(Modifier::DIM),
        _ => Style::new(),
    };
    let row = Line::from(vec![
        Span::raw(format!(
            "{mark}{:<8} {:<16} ",
            printable(&status.mode),
            printable(&status.name)
        )),
        Span::styled(format!("{:<12}", state(status)), state_style),
        Span::raw(format!(" {address:<24} {privacy:<8} {present}")),
    ]);
    let row = if selected {
        row.style(Style::new().add_modifier(Modifier::REVERSED))
    } else {
        row
    };
    let mut lines = vec![row];
    lines.extend(status.transfers.iter().map(transfer_line));
    lines
}

/// A transfer's line: a bar with bytes of total when its size is known, bytes alone (an
/// upload of unknown size) otherwise, and the rate.
fn transfer_line(transfer: &TransferStatus) -> Line<'static> {
    let (arrow, noun) = match transfer.direction {
        onionhost_sdk::Direction::Download => ("↓", "download"),
        onionhost_sdk::Direction::Upload => ("↑", "upload"),
    };
    let moved = match transfer.total {
        Some(total) => format!(
            "[{}] {} / {}",
            bar(transfer.bytes, total),
            human_bytes(transfer.bytes.min(total)),
            human_bytes(total)
        ),
        None => human_bytes(transfer.bytes),
    };
    Line::raw(format!(
        "      {arrow} {noun} #{}  {moved}  {}/s",
        transfer.id,
        human_bytes(transfer.rate)
    ))
}

/// A text progress bar of [`BAR`] cells.
fn bar(bytes: u64, total: u64) -> String {
    let filled = if total == 0 {
        BAR
    } else {
        usize::try_from(u128::from(bytes.min(total)) * BAR as u128 / u128::from(total))
            .unwrap_or(BAR)
    };
    format!("{}{}", "█".repeat(filled), "░".repeat(BAR - filled))
}

#[cfg(test)]
mod tests {
    use onionhost_sdk::Direction;

    use super::*;

    fn status() -> TabStatus {
        TabStatus {
            name: "files".into(),
            mode: "share".into(),
            state: State::Serving,
            why: None,
            address: Some(
                "http://abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcd.onion/".into(),
            ),
            private: true,
            added: false,
            present: None,
            visitors: 2,
            transfers: Vec::new(),
            client_key: None,
        }
    }

    fn text(line: &Line<'_>) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn an_onion_address_is_shortened_and_a_local_one_kept() {
        assert_eq!(
            short_address("http://abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcd.onion/"),
            "abcdefgh…yzabcd.onion"
        );
        assert_eq!(short_address("http://127.0.0.1:8080/"), "127.0.0.1:8080");
        // A control character in what a tab reports cannot reach the terminal.
        assert_eq!(short_address("http://a\x1b[2J/"), "a\\u{1b}[2J");
    }

    #[test]
    fn a_row_says_mode_name_state_address_privacy_and_who_is_there() {
        let row = text(&tab_lines(&status(), false)[0]);
        assert!(row.starts_with("  share    files "), "{row}");
        assert!(row.contains(" serving "), "{row}");
        assert!(row.contains(" abcdefgh…yzabcd.onion "), "{row}");
        assert!(row.contains(" private "), "{row}");
        assert!(row.ends_with("2 visitors"), "{row}");
        // A mode's own count (chat: its members) is shown over the host's.
        let mut chat = status();
        chat.mode = "chat".into();
        chat.present = Some(1);
        chat.private = false;
        let row = text(&tab_lines(&chat, true)[0]);
        assert!(row.starts_with("> chat "), "{row}");
        assert!(row.contains(" public "), "{row}");
        assert!(row.ends_with("1 member"), "{row}");
        let mut starting = status();
        starting.state = State::Starting;
        assert!(!text(&tab_lines(&starting, false)[0]).contains("visitor"));
        let mut failed = status();
        failed.state = State::Failed;
        failed.why = Some("cannot listen on 127.0.0.1:1".into());
        assert!(
            text(&tab_lines(&failed, false)[0]).contains(" failed: cannot listen on 127.0.0.1:1")
        );
    }

    #[test]
    fn a_transfer_has_a_bar_when_its_size_is_known_and_a_rate() {
        let mut tab = status();
        tab.transfers = vec![
            TransferStatus {
                id: 3,
                direction: Direction::Download,
                bytes: 50 << 20,
                total: Some(100 << 20),
                rate: 2 << 20,
            },
            TransferStatus {
                id: 4,
                direction: Direction::Upload,
                bytes: 3 << 20,
                total: None,
                rate: 1 << 20,
            },
        ];
        let lines = tab_lines(&tab, false);
        assert_eq!(lines.len(), 3);
        assert_eq!(
            text(&lines[1]),
            format!(
                "      ↓ download #3  [{}{}] 50.0 MiB / 100.0 MiB  2.0 MiB/s",
                "█".repeat(12),
                "░".repeat(12)
            )
        );
        assert_eq!(text(&lines[2]), "      ↑ upload #4  3.0 MiB  1.0 MiB/s");
        assert_eq!(bar(0, 0), "█".repeat(BAR));
        assert_eq!(bar(7, 5), "█".repeat(BAR));
    }
}
