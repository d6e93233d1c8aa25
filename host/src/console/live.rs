//! The live view: when stdout is a terminal, the console is a screen redrawn in place
//! (ratatui on crossterm) instead of a stream of lines.
//!
//! The view owns the terminal from [`LiveView::start`] until it is dropped: raw mode, the
//! alternate screen and bracketed paste (a paste comes as one event, never as keys: a pasted
//! `q` or `s` `y` must not quit or stop a tab). It gives the terminal back on every way out: a normal end, an error of
//! the host (dropped before `main` prints it), a panic on the main thread or the view's own
//! (the panic hook gives it back before the panic is printed), and a failure to draw. While
//! it owns the terminal, the console's lines and the log's go to its pane ([`Pane`]), never
//! to stdout or stderr, which would tear the screen; a panic on another thread (a tab's, which
//! the host survives) goes to the pane too.
//!
//! In raw mode Ctrl-C is a key, not a signal: the view turns it into the signal's meaning
//! (the first stops every tab gracefully, the second closes every connection).

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use tokio_util::sync::CancellationToken;

use super::form::{Asked, Form};
use super::pane::{Pane, Source};
use super::show::{Qr, draw_show};
use super::{Console, printable, rows};
use crate::control::Check;
use crate::modes::Registry;
use crate::supervisor::Handle;
use crate::tabs::TabStatus;

/// The view thread's name, which the panic hook looks for.
const THREAD: &str = "onionhost-live";

/// How long the view waits for a key before it looks for news to draw.
const TICK: Duration = Duration::from_millis(100);

/// How often the view redraws with no news (rates and times move on).
const REDRAW_EVERY: Duration = Duration::from_secs(1);

/// How many of the console's last lines are printed once the terminal is given back, so
/// that the user sees how the run ended.
const LINES_AFTER: usize = 12;

/// Whether the terminal is in the view's hands (raw mode, alternate screen).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// What the view's keys act on.
#[derive(Clone)]
pub(crate) struct Controls {
    /// Cancelled to stop every tab gracefully (the first Ctrl-C).
    pub(crate) shutdown: CancellationToken,
    /// Cancelled to close every connection at once (the second Ctrl-C).
    pub(crate) force_close: CancellationToken,
}

impl Controls {
    /// What Ctrl-C (the key or the signal) does: the first stops gracefully, the next closes
    /// everything.
    pub(crate) fn interrupt(&self) {
        if self.shutdown.is_cancelled() {
            self.force_close.cancel();
        } else {
            self.shutdown.cancel();
        }
    }
}

/// What the view's keys on tabs act on: the supervisor's orders, sent from the runtime.
pub(crate) struct TabOrders {
    /// The running supervisor's orders (open a tab, stop one).
    pub(crate) handle: Handle,
    /// How a new tab is checked: as `onionhost tabs add`'s are.
    pub(crate) check: Check,
    /// The modes a new tab can have.
    pub(crate) registry: Arc<Registry>,
    /// Where the orders are sent from (the view's thread is not one of the runtime's).
    pub(crate) runtime: tokio::runtime::Handle,
}

/// Whether the console should be a live view: stdout is a terminal (not a pipe, a file or a
/// service's journal) that can draw one, and the user did not ask for plain lines.
pub(crate) fn wanted(plain: bool) -> bool {
    !plain
        && std::io::stdout().is_terminal()
        && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
}

/// The live view, drawing on its own thread until dropped.
pub(crate) struct LiveView {
    pane: Pane,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LiveView {
    /// Takes the terminal and starts drawing; `None` (the console stays plain) if the
    /// terminal cannot be taken.
    pub(crate) fn start(
        console: Console,
        pane: Pane,
        controls: Controls,
        orders: TabOrders,
    ) -> Option<Self> {
        install_panic_hook(pane.clone());
        if let Err(err) = take_terminal() {
            give_back();
            tracing::debug!("no live view, plain lines instead: {err}");
            return None;
        }
        pane.set_open(true);
        let done = Arc::new(AtomicBool::new(false));
        let view = View {
            changes: console.tabs().changes(),
            console,
            pane: pane.clone(),
            controls,
            orders,
            done: Arc::clone(&done),
            selected: None,
            overlay: Overlay::None,
            message: None,
            outcomes: mpsc::channel(),
            forms: 0,
        };
        let thread = std::thread::Builder::new()
            .name(THREAD.to_owned())
            .spawn(move || view.run());
        match thread {
            Ok(thread) => {
                // In the pane, not on stderr, from now on.
                tracing::debug!("the live view has the terminal");
                Some(Self {
                    pane,
                    done,
                    thread: Some(thread),
                })
            }
            Err(err) => {
                pane.set_open(false);
                give_back();
                tracing::debug!("no live view, plain lines instead: {err}");
                None
            }
        }
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // A panic of the view thread was shown by the hook, which gave the terminal back.
            let _ = thread.join();
        }
        let last = self.pane.last(usize::MAX);
        self.pane.set_open(false);
        give_back();
        // The alternate screen is gone with what it showed: the end of the run is printed
        // on the ordinary screen.
        let console: Vec<_> = last
            .into_iter()
            .filter(|line| line.source == Source::Console)
            .collect();
        let skip = console.len().saturating_sub(LINES_AFTER);
        let mut out = std::io::stdout().lock();
        for line in &console[skip..] {
            let _ = std::io::Write::write_all(&mut out, format!("{}\n", line.text).as_bytes());
        }
        let _ = std::io::Write::flush(&mut out);
    }
}

/// Raw mode (keys one by one, no echo, Ctrl-C a key), the alternate screen and bracketed
/// paste (what is pasted comes as one [`Event::Paste`], not as keys).
fn take_terminal() -> std::io::Result<()> {
    TAKEN.store(true, Ordering::SeqCst);
    terminal::enable_raw_mode()?;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        event::EnableBracketedPaste,
        cursor::Hide
    )
}

/// Gives the terminal back as it was (once; later calls do nothing).
fn give_back() {
    if TAKEN.swap(false, Ordering::SeqCst) {
        // Each step even if another failed: a terminal left in raw mode is unusable.
        let _ = terminal::disable_raw_mode();
        let _ = execute!(std::io::stdout(), event::DisableBracketedPaste);
        let _ = execute!(
            std::io::stdout(),
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
    }
}

/// A panic while the view owns the terminal: on the main thread or the view's, the process
/// (or the view) ends, so the terminal is given back before the panic is printed; on any
/// other thread (a tab's task, which the host survives) it is shown in the pane.
fn install_panic_hook(pane: Pane) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if TAKEN.load(Ordering::SeqCst) {
                let thread = std::thread::current();
                let ends_the_view = matches!(thread.name(), Some("main" | THREAD));
                if !ends_the_view
                    && pane.push(
                        Source::Log,
                        &format!(
                            "thread '{}' panicked: {info}",
                            thread.name().unwrap_or("<unnamed>")
                        ),
                    )
                {
                    return;
                }
                pane.set_open(false);
                give_back();
            }
            previous(info);
        }));
    });
}

/// What the view has open over the rows: a question, or the show view.
enum Overlay {
    None,
    /// Quit was asked while transfers are in flight: the view asks what to do.
    ConfirmQuit,
    /// Stop the tab of that name? The view asks first.
    ConfirmStop(String),
    /// The tab of that name, in full: its address, its client key once asked (`key`), the
    /// address or the key as a QR code once asked (`qr`).
    Show {
        name: String,
        key: bool,
        qr: Qr,
    },
    /// The form for a new tab.
    Form(Form),
}

/// What an order the view sent to the supervisor came to.
enum Outcome {
    /// The tab is stopping.
    Stopping(String),
    /// The order was refused, for this reason.
    Refused(String),
    /// The new tab of that name, sent by the form of that id, is starting.
    Added { form: u64, name: String },
    /// The new tab sent by the form of that id was refused, for this reason.
    AddRefused { form: u64, why: String },
}

/// The answer to the tab sent by form `id`, `refused` or not: it closes that form or puts
/// the reason in it if that form is still open and waiting; a form opened since (the first
/// closed with Esc while its tab was opening) is left alone. Returns the reason if no form
/// took it.
fn answer_form(overlay: &mut Overlay, id: u64, refused: Option<String>) -> Option<String> {
    let Overlay::Form(form) = overlay else {
        return refused;
    };
    if !form.awaits(id) {
        return refused;
    }
    match refused {
        None => *overlay = Overlay::None,
        Some(why) => {
            form.pending = false;
            form.errors = vec![why];
        }
    }
    None
}

/// The view's state, on its thread.
struct View {
    console: Console,
    pane: Pane,
    controls: Controls,
    orders: TabOrders,
    done: Arc<AtomicBool>,
    /// Every change of the tabs' status, to redraw at once.
    changes: tokio::sync::watch::Receiver<u64>,
    /// The selected tab's name (it stays selected while other tabs come and go).
    selected: Option<String>,
    overlay: Overlay,
    /// The last order's outcome, shown above the keys.
    message: Option<String>,
    outcomes: (mpsc::Sender<Outcome>, mpsc::Receiver<Outcome>),
    /// How many forms were opened: each has its number as id, carried in its answer.
    forms: u64,
}

impl View {
    fn run(mut self) {
        let mut terminal = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
            Ok(terminal) => terminal,
            Err(err) => return self.fail(&err),
        };
        let mut drawn: Option<(u64, Instant)> = None;
        let mut dirty = true;
        while !self.done.load(Ordering::SeqCst) {
            if self.changes.has_changed().unwrap_or(false) {
                self.changes.mark_unchanged();
                dirty = true;
            }
            while let Ok(outcome) = self.outcomes.1.try_recv() {
                self.outcome(outcome);
                dirty = true;
            }
            let version = self.pane.version();
            let stale =
                drawn.is_none_or(|(was, at)| was != version || at.elapsed() >= REDRAW_EVERY);
            if dirty || stale {
                let tabs = self.console.tabs().snapshot();
                // One frame is many writes: inside a synchronized update a terminal shows it
                // whole, never torn half-way (terminals without the mode ignore it).
                let drawn_whole =
                    execute!(terminal.backend_mut(), terminal::BeginSynchronizedUpdate)
                        .and_then(|()| terminal.draw(|frame| self.draw(frame, &tabs)).map(drop))
                        .and_then(|()| {
                            execute!(terminal.backend_mut(), terminal::EndSynchronizedUpdate)
                        });
                if let Err(err) = drawn_whole {
                    return self.fail(&err);
                }
                drawn = Some((version, Instant::now()));
                dirty = false;
            }
            match event::poll(TICK) {
                Ok(false) => {}
                Ok(true) => match event::read() {
                    Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                        self.key(key);
                        dirty = true;
                    }
                    Ok(Event::Paste(text)) => {
                        self.paste(&text);
                        dirty = true;
                    }
                    Ok(_) => dirty = true,
                    Err(err) => return self.fail(&err),
                },
                Err(err) => return self.fail(&err),
            }
        }
    }

    fn outcome(&mut self, outcome: Outcome) {
        self.message = Some(match outcome {
            Outcome::Stopping(name) => format!("tab {name:?} is stopping"),
            Outcome::Refused(why) => why,
            Outcome::Added { form, name } => {
                answer_form(&mut self.overlay, form, None);
                let message = format!("tab {name:?} is starting");
                self.selected = Some(name);
                message
            }
            Outcome::AddRefused { form, why } => {
                match answer_form(&mut self.overlay, form, Some(why)) {
                    Some(why) => why,
                    None => return,
                }
            }
        });
    }

    /// The view cannot go on: the terminal is given back and the console goes on in plain
    /// lines.
    fn fail(&self, err: &std::io::Error) {
        self.pane.set_open(false);
        give_back();
        tracing::warn!("the live view stopped, plain lines from now on: {err}");
    }

    /// A paste goes into the form's field, if the form is open; anywhere else it is
    /// ignored (its characters are no keys).
    fn paste(&mut self, text: &str) {
        if let Overlay::Form(form) = &mut self.overlay {
            form.paste(text);
        }
    }

    fn key(&mut self, key: KeyEvent) {
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        if ctrl_c {
            if matches!(self.overlay, Overlay::ConfirmQuit | Overlay::ConfirmStop(_)) {
                self.overlay = Overlay::None;
            }
            self.controls.interrupt();
            return;
        }
        match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::ConfirmQuit => match key.code {
                // Quit now: the transfers in flight are cut.
                KeyCode::Char('y') => {
                    self.controls.shutdown.cancel();
                    self.controls.force_close.cancel();
                }
                // Stop taking visitors, quit once the transfers have ended.
                KeyCode::Char('w') => self.controls.shutdown.cancel(),
                _ => {}
            },
            Overlay::ConfirmStop(name) => {
                if key.code == KeyCode::Char('y') {
                    self.stop(name);
                }
            }
            Overlay::Show {
                name,
                key: shown,
                qr,
            } => match key.code {
                KeyCode::Esc | KeyCode::Char('q') => {}
                KeyCode::Char('k') => {
                    // Hiding the key hides its QR code too.
                    let qr = if shown && qr == Qr::Key { Qr::Off } else { qr };
                    self.overlay = Overlay::Show {
                        name,
                        key: !shown,
                        qr,
                    };
                }
                KeyCode::Char('r') => {
                    // The address's code, then the key's once the key is shown, then none.
                    let has_key = self
                        .console
                        .tabs()
                        .get(&name)
                        .is_some_and(|tab| tab.client_key.is_some());
                    let qr = match qr {
                        Qr::Off => Qr::Address,
                        Qr::Address if shown && has_key => Qr::Key,
                        Qr::Address | Qr::Key => Qr::Off,
                    };
                    self.overlay = Overlay::Show {
                        name,
                        key: shown,
                        qr,
                    };
                }
                _ => {
                    self.overlay = Overlay::Show {
                        name,
                        key: shown,
                        qr,
                    }
                }
            },
            Overlay::Form(mut form) => match form.key(key) {
                Asked::Cancel => {}
                Asked::Nothing => self.overlay = Overlay::Form(form),
                Asked::Submit => {
                    self.submit(&mut form);
                    self.overlay = Overlay::Form(form);
                }
            },
            Overlay::None => self.key_on_rows(key),
        }
    }

    /// A key with nothing open over the rows.
    fn key_on_rows(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Char('q') => {
                if self.console.transfers_in_flight() > 0 {
                    self.overlay = Overlay::ConfirmQuit;
                } else {
                    self.controls.shutdown.cancel();
                }
            }
            KeyCode::Char('n') => {
                self.forms += 1;
                self.overlay = Overlay::Form(Form::new(self.orders.registry.choices(), self.forms));
            }
            KeyCode::Up | KeyCode::Char('k') => self.select(-1),
            KeyCode::Down | KeyCode::Char('j') => self.select(1),
            KeyCode::Char('s') => {
                let tab = self.selected_tab();
                match tab {
                    Some(tab) if tab.state.is_ended() => {
                        self.message =
                            Some(format!("tab {:?} has {}", tab.name, tab.state.as_str()));
                    }
                    Some(tab) => self.overlay = Overlay::ConfirmStop(tab.name),
                    None => self.message = Some("no tab is selected".to_owned()),
                }
            }
            KeyCode::Enter | KeyCode::Char('a') => match self.selected_tab() {
                Some(tab) => {
                    self.overlay = Overlay::Show {
                        name: tab.name,
                        key: false,
                        qr: Qr::Off,
                    };
                }
                None => self.message = Some("no tab is selected".to_owned()),
            },
            _ => {}
        }
    }

    /// The selected tab's status: the one of that name, or the first tab.
    fn selected_tab(&mut self) -> Option<TabStatus> {
        let tabs = self.console.tabs().snapshot();
        let index = selected_index(&tabs, self.selected.as_deref())?;
        let tab = tabs.into_iter().nth(index)?;
        self.selected = Some(tab.name.clone());
        Some(tab)
    }

    /// Moves the selection `by` rows (up when negative), staying on the first or last.
    fn select(&mut self, by: isize) {
        let tabs = self.console.tabs().snapshot();
        let Some(index) = selected_index(&tabs, self.selected.as_deref()) else {
            return;
        };
        let index = index.saturating_add_signed(by).min(tabs.len() - 1);
        self.selected = Some(tabs[index].name.clone());
    }

    /// Checks the form's tab as `onionhost tabs add` does; a tab that passes is sent to the
    /// supervisor (the form waits for its answer), one that does not leaves the config's
    /// messages in the form and touches nothing.
    fn submit(&mut self, form: &mut Form) {
        form.errors.clear();
        let add = match form.as_tabs_add() {
            Ok(add) => add,
            Err(err) => {
                form.errors = vec![err];
                return;
            }
        };
        let table = match crate::control::client::added_table(&add) {
            Ok(table) => table,
            Err(err) => {
                form.errors = vec![format!("{err:#}")];
                return;
            }
        };
        let tab = match crate::control::checked(&self.orders.check, table) {
            Ok(tab) => tab,
            Err(errors) => {
                form.errors = errors;
                return;
            }
        };
        form.pending = true;
        let name = form.name().trim().to_owned();
        let handle = self.orders.handle.clone();
        let outcomes = self.outcomes.0.clone();
        let id = form.id();
        self.orders.runtime.spawn(async move {
            let outcome = match handle.add(tab).await {
                Ok(()) => Outcome::Added { form: id, name },
                Err(err) => Outcome::AddRefused {
                    form: id,
                    why: err.to_string(),
                },
            };
            let _ = outcomes.send(outcome);
        });
    }

    /// Asks the supervisor to stop `name` gracefully; the outcome comes back to the view.
    fn stop(&mut self, name: String) {
        let handle = self.orders.handle.clone();
        let outcomes = self.outcomes.0.clone();
        self.message = Some(format!("stopping tab {name:?}…"));
        self.orders.runtime.spawn(async move {
            let outcome = match handle.stop(&name, "asked in the live view").await {
                Ok(()) => Outcome::Stopping(name),
                Err(err) => Outcome::Refused(err.to_string()),
            };
            let _ = outcomes.send(outcome);
        });
    }

    fn draw(&self, frame: &mut ratatui::Frame<'_>, tabs: &[TabStatus]) {
        let selected = selected_index(tabs, self.selected.as_deref());
        let mut rows: Vec<Line<'_>> = Vec::new();
        let mut selected_row = 0;
        for (index, tab) in tabs.iter().enumerate() {
            if Some(index) == selected {
                selected_row = rows.len();
            }
            rows.extend(rows::tab_lines(tab, Some(index) == selected));
        }
        if rows.is_empty() {
            rows.push(Line::raw("  no tab yet"));
        }
        let area = frame.area();
        let tabs_height = u16::try_from(rows.len() + 3)
            .unwrap_or(u16::MAX)
            .min((area.height / 2).max(4));
        let [title, tabs_area, log, message, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(tabs_height),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let state = if self.controls.force_close.is_cancelled() {
            " · closing every connection"
        } else if self.controls.shutdown.is_cancelled() {
            " · stopping: no new visitors, transfers in flight finish"
        } else if !tabs.is_empty() && tabs.iter().all(|tab| tab.state.is_ended()) {
            " · no tab running (n opens one)"
        } else {
            " · serving"
        };
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("onionhost", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(state),
            ])),
            title,
        );
        // The selected tab stays in sight when there are more rows than room.
        let room = usize::from(tabs_area.height.saturating_sub(3));
        let scroll = selected_row.saturating_sub(room.saturating_sub(1));
        let mut shown = vec![Line::styled(
            rows::HEADER,
            Style::new().add_modifier(Modifier::BOLD),
        )];
        shown.extend(rows.into_iter().skip(scroll));
        frame.render_widget(
            Paragraph::new(shown).block(Block::bordered().title(" Tabs ")),
            tabs_area,
        );
        let height = usize::from(log.height.saturating_sub(2));
        let lines: Vec<Line<'_>> = self
            .pane
            .last(height)
            .into_iter()
            .map(|line| match line.source {
                Source::Console => Line::raw(line.text),
                Source::Log => Line::styled(line.text, Style::new().add_modifier(Modifier::DIM)),
            })
            .collect();
        frame.render_widget(
            Paragraph::new(lines).block(Block::bordered().title(" Console ")),
            log,
        );
        if let Some(text) = &self.message {
            frame.render_widget(Paragraph::new(printable(text)), message);
        }
        frame.render_widget(
            Paragraph::new(KEYS).style(Style::new().add_modifier(Modifier::REVERSED)),
            keys,
        );
        match &self.overlay {
            Overlay::None => {}
            Overlay::ConfirmQuit => self.draw_confirm_quit(frame),
            Overlay::ConfirmStop(name) => draw_confirm_stop(frame, name),
            Overlay::Show { name, key, qr } => {
                let tab = tabs.iter().rev().find(|tab| tab.name == *name);
                draw_show(frame, name, tab, *key, *qr);
            }
            Overlay::Form(form) => {
                let lines = form.lines();
                let width = lines.iter().map(Line::width).max().unwrap_or(0).max(72) + 4;
                popup(
                    frame,
                    " New tab ",
                    lines,
                    u16::try_from(width).unwrap_or(u16::MAX),
                );
            }
        }
    }

    fn draw_confirm_quit(&self, frame: &mut ratatui::Frame<'_>) {
        let n = self.console.transfers_in_flight();
        let text = vec![
            Line::raw(format!("{n} transfer(s) in flight.")),
            Line::raw(""),
            Line::raw("y  quit now: they are cut off"),
            Line::raw("w  stop taking visitors, quit when they end"),
            Line::raw("n  keep running"),
        ];
        popup(frame, " Quit? ", text, 50);
    }
}

/// The keys, on the last row.
const KEYS: &str = "q quit · ↑↓/jk select · n new tab · s stop · Enter show · Ctrl-C stop all";

/// The index of the tab called `name` in `tabs` (the latest of that name), else the first.
fn selected_index(tabs: &[TabStatus], name: Option<&str>) -> Option<usize> {
    if tabs.is_empty() {
        return None;
    }
    Some(
        name.and_then(|name| tabs.iter().rposition(|tab| tab.name == name))
            .unwrap_or(0),
    )
}

fn draw_confirm_stop(frame: &mut ratatui::Frame<'_>, name: &str) {
    let text = vec![
        Line::raw(format!("Stop tab {:?}?", printable(name))),
        Line::raw("It takes no new visitors; transfers in flight finish."),
        Line::raw(""),
        Line::raw("y  stop it"),
        Line::raw("n  keep it"),
    ];
    popup(frame, " Stop? ", text, 60);
}

/// `text` in a bordered box with `title` in the middle of the screen, `width` wide (as high
/// as its lines once wrapped).
pub(super) fn popup(frame: &mut ratatui::Frame<'_>, title: &str, text: Vec<Line<'_>>, width: u16) {
    let inner = usize::from(width.min(frame.area().width).saturating_sub(2)).max(1);
    let rows: usize = text
        .iter()
        .map(|line| line.width().div_ceil(inner).max(1))
        .sum();
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    let area = centered(frame.area(), width, height);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title.to_owned())),
        area,
    );
}

/// A `width` × `height` rectangle in the middle of `area` (smaller if `area` is).
pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn typed(form: &mut Form, keys: &[KeyCode]) {
        for &code in keys {
            form.key(KeyEvent::new(code, KeyModifiers::NONE));
        }
    }

    fn open_form(id: u64) -> Overlay {
        Overlay::Form(Form::new(
            vec![super::super::form::ModeChoice {
                mode: "chat".to_owned(),
                plugin: None,
            }],
            id,
        ))
    }

    #[test]
    fn the_keys_row_fits_80_columns() {
        assert!(Line::raw(KEYS).width() <= 80, "{}", Line::raw(KEYS).width());
    }

    #[test]
    fn a_stale_answer_leaves_a_new_form_alone() {
        // Form 1 sent its tab and was closed with Esc while the tab was opening; form 2 is
        // open, being filled.
        let mut overlay = open_form(2);
        if let Overlay::Form(form) = &mut overlay {
            typed(form, &[KeyCode::Tab, KeyCode::Char('x')]);
        }
        // Form 1's answers: neither closes form 2 nor puts errors in it.
        assert_eq!(answer_form(&mut overlay, 1, None), None);
        assert_eq!(
            answer_form(&mut overlay, 1, Some("refused".to_owned())).as_deref(),
            Some("refused")
        );
        let Overlay::Form(form) = &mut overlay else {
            panic!("form 2 was closed");
        };
        assert_eq!(form.name(), "x");
        assert!(form.errors.is_empty());
        // Form 2's own answer, while it waits, does.
        form.pending = true;
        assert_eq!(
            answer_form(&mut overlay, 2, Some("refused".to_owned())),
            None
        );
        let Overlay::Form(form) = &mut overlay else {
            panic!("form 2 was closed");
        };
        assert_eq!(form.errors, ["refused"]);
        assert!(!form.pending);
        // Not waiting any more: a late answer changes nothing.
        assert_eq!(answer_form(&mut overlay, 2, None), None);
        assert!(matches!(overlay, Overlay::Form(_)));
        if let Overlay::Form(form) = &mut overlay {
            form.pending = true;
        }
        assert_eq!(answer_form(&mut overlay, 2, None), None);
        assert!(matches!(overlay, Overlay::None));
    }
}
