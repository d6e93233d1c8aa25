//! The live view: when stdout is a terminal, the console is a screen redrawn in place
//! (ratatui on crossterm) instead of a stream of lines.
//!
//! The view owns the terminal from [`LiveView::start`] until it is dropped: raw mode and the
//! alternate screen. It gives the terminal back on every way out: a normal end, an error of
//! the host (dropped before `main` prints it), a panic on the main thread or the view's own
//! (the panic hook gives it back before the panic is printed), and a failure to draw. While
//! it owns the terminal, the console's lines and the log's go to its pane ([`Pane`]), never
//! to stdout or stderr, which would tear the screen; a panic on another thread (a tab's, which
//! the host survives) goes to the pane too.
//!
//! In raw mode Ctrl-C is a key, not a signal: the view turns it into the signal's meaning
//! (the first stops every tab gracefully, the second closes every connection).

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

use super::Console;
use super::pane::{Pane, Source};

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
    pub(crate) fn start(console: Console, pane: Pane, controls: Controls) -> Option<Self> {
        install_panic_hook(pane.clone());
        if let Err(err) = take_terminal() {
            give_back();
            tracing::debug!("no live view, plain lines instead: {err}");
            return None;
        }
        pane.set_open(true);
        let done = Arc::new(AtomicBool::new(false));
        let view = View {
            console,
            pane: pane.clone(),
            controls,
            done: Arc::clone(&done),
            confirm_quit: false,
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

/// Raw mode (keys one by one, no echo, Ctrl-C a key) and the alternate screen.
fn take_terminal() -> std::io::Result<()> {
    TAKEN.store(true, Ordering::SeqCst);
    terminal::enable_raw_mode()?;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        cursor::Hide
    )
}

/// Gives the terminal back as it was (once; later calls do nothing).
fn give_back() {
    if TAKEN.swap(false, Ordering::SeqCst) {
        // Each step even if another failed: a terminal left in raw mode is unusable.
        let _ = terminal::disable_raw_mode();
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

/// The view's state, on its thread.
struct View {
    console: Console,
    pane: Pane,
    controls: Controls,
    done: Arc<AtomicBool>,
    /// Quit was asked while transfers are in flight: the view asks what to do.
    confirm_quit: bool,
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
            let version = self.pane.version();
            let stale =
                drawn.is_none_or(|(was, at)| was != version || at.elapsed() >= REDRAW_EVERY);
            if dirty || stale {
                if let Err(err) = terminal.draw(|frame| self.draw(frame)) {
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
                    Ok(_) => dirty = true,
                    Err(err) => return self.fail(&err),
                },
                Err(err) => return self.fail(&err),
            }
        }
    }

    /// The view cannot go on: the terminal is given back and the console goes on in plain
    /// lines.
    fn fail(&self, err: &std::io::Error) {
        self.pane.set_open(false);
        give_back();
        tracing::warn!("the live view stopped, plain lines from now on: {err}");
    }

    fn key(&mut self, key: KeyEvent) {
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        if ctrl_c {
            self.confirm_quit = false;
            self.controls.interrupt();
            return;
        }
        if self.confirm_quit {
            match key.code {
                // Quit now: the transfers in flight are cut.
                KeyCode::Char('y') => {
                    self.controls.shutdown.cancel();
                    self.controls.force_close.cancel();
                }
                // Stop taking visitors, quit once the transfers have ended.
                KeyCode::Char('w') => self.controls.shutdown.cancel(),
                _ => {}
            }
            self.confirm_quit = false;
            return;
        }
        if let KeyCode::Char('q') = key.code {
            if self.console.transfers_in_flight() > 0 {
                self.confirm_quit = true;
            } else {
                self.controls.shutdown.cancel();
            }
        }
    }

    fn draw(&self, frame: &mut ratatui::Frame<'_>) {
        let [title, log, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let state = if self.controls.force_close.is_cancelled() {
            " · closing every connection"
        } else if self.controls.shutdown.is_cancelled() {
            " · stopping: no new visitors, transfers in flight finish"
        } else {
            ""
        };
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("onionhost", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(state),
            ])),
            title,
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
        frame.render_widget(
            Paragraph::new("q quit · Ctrl-C stop every tab (twice: at once)")
                .style(Style::new().add_modifier(Modifier::REVERSED)),
            keys,
        );
        if self.confirm_quit {
            self.draw_confirm_quit(frame);
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
        let area = centered(frame.area(), 50, 7);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().title(" Quit? ")),
            area,
        );
    }
}

/// A `width` × `height` rectangle in the middle of `area` (smaller if `area` is).
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}
