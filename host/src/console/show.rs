//! The live view's show view: one tab in full, its address, its client key (hidden until
//! asked) and, on request, the address's or the key's QR code.

use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};

use super::live::{centered, popup};
use super::printable;
use crate::tabs::TabStatus;

/// Which QR code the show view draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Qr {
    /// None.
    Off,
    /// The address's.
    Address,
    /// The client key's (only while the key is shown): Tor Browser asks for the key alone.
    Key,
}

/// The show view: the tab's full address, its client key once asked, the address's or the
/// key's QR code once asked.
pub(super) fn draw_show(
    frame: &mut ratatui::Frame<'_>,
    name: &str,
    tab: Option<&TabStatus>,
    key: bool,
    qr: Qr,
) {
    let mut text = Vec::new();
    let Some(tab) = tab else {
        text.push(Line::raw("This tab is gone."));
        text.push(Line::raw(""));
        text.push(Line::raw("Esc close"));
        popup(frame, &format!(" {} ", printable(name)), text, 40);
        return;
    };
    text.push(Line::raw(format!(
        "{} tab, {}",
        printable(&tab.mode),
        tab.state.as_str()
    )));
    let address = tab.address.as_deref().map(printable);
    text.push(Line::raw(format!(
        "address: {}",
        address.as_deref().unwrap_or("not known yet")
    )));
    if tab.private {
        match (&tab.client_key, key) {
            (Some(client_key), true) => {
                text.push(Line::raw(format!("client key: {}", client_key.expose())));
            }
            (Some(_), false) => text.push(Line::raw("client key: hidden (k shows it)")),
            (None, _) => text.push(Line::raw("client key: not known yet")),
        }
    } else {
        text.push(Line::raw("public: visitors need no client key"));
    }
    text.push(Line::raw(""));
    let client_key = tab.client_key.as_ref().filter(|_| key);
    let (what, encoded) = match qr {
        Qr::Off => ("", None),
        Qr::Address => ("address", address.clone()),
        Qr::Key => ("client key", client_key.map(|k| k.expose().to_owned())),
    };
    if qr != Qr::Off {
        match encoded.as_deref().map(super::qr_lines) {
            Some(Some(lines)) => return draw_qr(frame, name, what, lines),
            Some(None) => text.push(Line::raw(format!("the {what} is too long for a QR code"))),
            None => text.push(Line::raw(format!("no {what} yet for a QR code"))),
        }
        text.push(Line::raw(""));
    }
    let (key_help, qr_help) = match (tab.private, key) {
        (false, _) => ("", "r QR code"),
        (true, false) => ("k show the client key · ", "r QR code"),
        (true, true) => ("k hide the client key · ", "r QR code (address, key)"),
    };
    text.push(Line::raw(format!("{key_help}{qr_help} · Esc close")));
    let width = text
        .iter()
        .map(Line::width)
        .max()
        .unwrap_or(0)
        .saturating_add(4);
    popup(
        frame,
        &format!(" {} ", printable(name)),
        text,
        u16::try_from(width).unwrap_or(u16::MAX),
    );
}

/// A QR code alone, with one line of title: anything more would push it off a small
/// terminal, and a code cut short cannot be scanned. It has no border (its quiet zone is
/// one); if the terminal is too small for it, the view says so.
fn draw_qr(frame: &mut ratatui::Frame<'_>, name: &str, what: &str, code: Vec<String>) {
    let width = code
        .iter()
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0);
    let (width, height) = (
        u16::try_from(width).unwrap_or(u16::MAX),
        u16::try_from(code.len() + 1).unwrap_or(u16::MAX),
    );
    let area = frame.area();
    if width > area.width || height > area.height {
        let text = vec![
            Line::raw(format!(
                "terminal too small for the QR code (needs {width}x{height})"
            )),
            Line::raw(""),
            Line::raw("r next · Esc close"),
        ];
        popup(frame, &format!(" {} ", printable(name)), text, 64);
        return;
    }
    let title = format!("{what} as a QR code: r next · Esc close");
    let shown = u16::try_from(title.chars().count())
        .unwrap_or(u16::MAX)
        .max(width);
    let area = centered(area, shown, height);
    let mut lines = vec![Line::styled(
        title,
        Style::new().add_modifier(Modifier::BOLD),
    )];
    lines.extend(code.into_iter().map(Line::raw));
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).centered(), area);
}
