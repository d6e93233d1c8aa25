//! The live view's form for a new tab: mode, name, paths, public or private.
//!
//! The form only collects what the user typed. The tab it makes goes the way of
//! `onionhost tabs add`: the same `[[tab]]` table (`control::client::added_table`), the same
//! check (`config::check_added_tab`, whose messages the form shows as they are), the same
//! order to the supervisor. A small field editor is enough here: one line, bounded, no
//! history.

use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::printable;
use crate::cli::TabsAdd;

/// The most characters a field takes: the form is for names and paths, and what a user
/// pastes is bounded too.
const MAX_FIELD: usize = 4096;

/// A mode the form offers: a built-in one, or a plugin's (with its library).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModeChoice {
    /// The mode's name.
    pub(crate) mode: String,
    /// The plugin library it comes from; `None` for a built-in mode.
    pub(crate) plugin: Option<PathBuf>,
}

/// One line of text being edited, with its cursor (in characters).
#[derive(Debug, Default)]
struct Field {
    text: String,
    cursor: usize,
}

impl Field {
    fn key(&mut self, code: KeyCode) {
        let len = self.text.chars().count();
        match code {
            KeyCode::Char(c) if len < MAX_FIELD && !c.is_control() => {
                let at = self.byte(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte(self.cursor);
                self.text.remove(at);
            }
            KeyCode::Delete if self.cursor < len => {
                let at = self.byte(self.cursor);
                self.text.remove(at);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(len),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = len,
            _ => {}
        }
    }

    /// Inserts pasted `text` at the cursor, its control characters (a line break, a tab)
    /// as spaces, as much of it as the field has room for.
    fn paste(&mut self, text: &str) {
        let room = MAX_FIELD.saturating_sub(self.text.chars().count());
        let pasted: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(room)
            .collect();
        let at = self.byte(self.cursor);
        self.text.insert_str(at, &pasted);
        self.cursor += pasted.chars().count();
    }

    /// The byte offset of character `n`.
    fn byte(&self, n: usize) -> usize {
        self.text
            .char_indices()
            .nth(n)
            .map_or(self.text.len(), |(at, _)| at)
    }

    /// The field's spans, with the cursor shown when it has the focus.
    fn spans(&self, focused: bool) -> Vec<Span<'static>> {
        if !focused {
            return vec![Span::raw(printable(&self.text))];
        }
        let at = self.byte(self.cursor);
        let (before, rest) = self.text.split_at(at);
        let mut rest = rest.chars();
        let under = rest.next().map_or_else(|| " ".to_owned(), String::from);
        vec![
            Span::raw(printable(before)),
            Span::styled(
                printable(&under),
                Style::new().add_modifier(Modifier::REVERSED),
            ),
            Span::raw(printable(rest.as_str())),
        ]
    }
}

/// Which field has the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    Mode,
    Name,
    Paths,
    Public,
}

const ORDER: [Focus; 4] = [Focus::Mode, Focus::Name, Focus::Paths, Focus::Public];

/// What a key in the form asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Asked {
    /// Nothing more than the form's own change.
    Nothing,
    /// Close it, opening nothing.
    Cancel,
    /// Open the tab.
    Submit,
}

/// The form's state.
#[derive(Debug)]
pub(super) struct Form {
    /// Which form this is (the live view numbers them), carried in the answer to its tab.
    id: u64,
    modes: Vec<ModeChoice>,
    mode: usize,
    name: Field,
    paths: Field,
    public: bool,
    focus: Focus,
    /// Why the last try was refused (the config's messages), shown in the form.
    pub(super) errors: Vec<String>,
    /// The tab was sent to the supervisor; its answer is awaited.
    pub(super) pending: bool,
}

impl Form {
    /// An empty form offering `modes` (it opens on the first), numbered `id`.
    pub(super) fn new(modes: Vec<ModeChoice>, id: u64) -> Self {
        Self {
            id,
            modes,
            mode: 0,
            name: Field::default(),
            paths: Field::default(),
            public: false,
            focus: Focus::Mode,
            errors: Vec::new(),
            pending: false,
        }
    }

    /// Which form this is.
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Whether this form is waiting for the answer to the tab that form `id` sent.
    pub(super) fn awaits(&self, id: u64) -> bool {
        self.pending && self.id == id
    }

    /// Takes a paste: into the name or the paths if one has the focus (a line break in it
    /// is a space, never Enter), else nothing; nothing either while the tab is opened.
    pub(super) fn paste(&mut self, text: &str) {
        if self.pending {
            return;
        }
        match self.focus {
            Focus::Name => self.name.paste(text),
            Focus::Paths => self.paths.paste(text),
            Focus::Mode | Focus::Public => {}
        }
    }

    /// Takes a key.
    pub(super) fn key(&mut self, key: KeyEvent) -> Asked {
        if self.pending {
            // Nothing changes under a tab being opened; Esc still closes the form.
            return if key.code == KeyCode::Esc {
                Asked::Cancel
            } else {
                Asked::Nothing
            };
        }
        let position = ORDER.iter().position(|f| *f == self.focus).unwrap_or(0);
        match key.code {
            KeyCode::Esc => return Asked::Cancel,
            KeyCode::Enter => return Asked::Submit,
            KeyCode::Tab | KeyCode::Down => self.focus = ORDER[(position + 1) % ORDER.len()],
            KeyCode::BackTab | KeyCode::Up => {
                self.focus = ORDER[(position + ORDER.len() - 1) % ORDER.len()];
            }
            code => match self.focus {
                Focus::Mode => self.cycle_mode(code),
                Focus::Public => match code {
                    KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right => {
                        self.public = !self.public;
                    }
                    KeyCode::Char('y') => self.public = true,
                    KeyCode::Char('n') => self.public = false,
                    _ => {}
                },
                Focus::Name if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.name.key(code);
                }
                Focus::Paths if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.paths.key(code);
                }
                Focus::Name | Focus::Paths => {}
            },
        }
        Asked::Nothing
    }

    fn cycle_mode(&mut self, code: KeyCode) {
        let n = self.modes.len();
        if n == 0 {
            return;
        }
        match code {
            KeyCode::Right | KeyCode::Char(' ') => self.mode = (self.mode + 1) % n,
            KeyCode::Left => self.mode = (self.mode + n - 1) % n,
            _ => {}
        }
    }

    /// The name typed.
    pub(super) fn name(&self) -> &str {
        &self.name.text
    }

    /// What `onionhost tabs add` would have been given for this tab, or what is wrong with
    /// the form. The paths are split as a shell splits words: `"My file.pdf"`, `My\ file.pdf`.
    pub(super) fn as_tabs_add(&self) -> Result<TabsAdd, String> {
        let choice = self
            .modes
            .get(self.mode)
            .ok_or_else(|| "no mode to open a tab of".to_owned())?;
        let paths = shlex::split(&self.paths.text)
            .ok_or_else(|| "paths: a quote is not closed (or the text ends in \\)".to_owned())?;
        Ok(TabsAdd {
            mode: choice.mode.clone(),
            name: self.name.text.trim().to_owned(),
            paths: paths.into_iter().map(PathBuf::from).collect(),
            plugin: choice.plugin.clone(),
            port: None,
            public: self.public,
            persistent: false,
            qr: false,
            keep_sharing: false,
            title: None,
            auto_start: None,
            auto_stop: None,
            settings: Vec::new(),
            no_wait: true,
        })
    }

    /// The form's lines.
    pub(super) fn lines(&self) -> Vec<Line<'static>> {
        let label = |focus: Focus, text: &str| {
            let mark = if self.focus == focus { "> " } else { "  " };
            let style = if self.focus == focus {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            };
            Span::styled(format!("{mark}{text:<8}"), style)
        };
        let mode = match self.modes.get(self.mode) {
            Some(ModeChoice {
                mode,
                plugin: Some(plugin),
            }) => format!("< {} > (plugin {})", mode, plugin.display()),
            Some(ModeChoice { mode, plugin: None }) => format!("< {mode} >"),
            None => "no mode".to_owned(),
        };
        let mut name = vec![label(Focus::Name, "name")];
        name.extend(self.name.spans(self.focus == Focus::Name));
        let mut paths = vec![label(Focus::Paths, "paths")];
        paths.extend(self.paths.spans(self.focus == Focus::Paths));
        let mut lines = vec![
            Line::from(vec![
                label(Focus::Mode, "mode"),
                Span::raw(printable(&mode)),
            ]),
            Line::from(name),
            Line::from(paths),
            Line::from(vec![
                label(Focus::Public, "public"),
                Span::raw(if self.public { "yes" } else { "no" }),
            ]),
            Line::raw(""),
            Line::raw("paths: space separated, quoted as in a shell (\"My file.pdf\");"),
            Line::raw("share takes files and folders, receive and website one folder, chat none"),
        ];
        if self.pending {
            lines.push(Line::raw(""));
            lines.push(Line::raw("opening the tab…"));
        }
        if !self.errors.is_empty() {
            lines.push(Line::raw(""));
            lines.extend(self.errors.iter().flat_map(|error| {
                error
                    .lines()
                    .map(|line| {
                        Line::styled(printable(line), Style::new().add_modifier(Modifier::BOLD))
                    })
                    .collect::<Vec<_>>()
            }));
        }
        lines.push(Line::raw(""));
        lines.push(Line::raw(if self.pending {
            "Esc closes this; the tab still opens"
        } else {
            "Tab/↑↓ field · ←→ mode, public · Enter open · Esc cancel"
        }));
        lines
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn press(form: &mut Form, code: KeyCode) -> Asked {
        form.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn typed(form: &mut Form, text: &str) {
        for c in text.chars() {
            press(form, KeyCode::Char(c));
        }
    }

    fn modes() -> Vec<ModeChoice> {
        ["chat", "share"]
            .into_iter()
            .map(|mode| ModeChoice {
                mode: mode.to_owned(),
                plugin: None,
            })
            .chain([ModeChoice {
                mode: "pastebin".to_owned(),
                plugin: Some("/lib/libpastebin.so".into()),
            }])
            .collect()
    }

    #[test]
    fn the_form_makes_what_tabs_add_would_be_given() {
        let mut form = Form::new(modes(), 1);
        press(&mut form, KeyCode::Right);
        press(&mut form, KeyCode::Tab);
        typed(&mut form, "filez");
        press(&mut form, KeyCode::Left);
        press(&mut form, KeyCode::Backspace);
        press(&mut form, KeyCode::End);
        typed(&mut form, "s");
        press(&mut form, KeyCode::Tab);
        typed(&mut form, "a.txt  dir/b");
        press(&mut form, KeyCode::Tab);
        press(&mut form, KeyCode::Char(' '));
        assert_eq!(press(&mut form, KeyCode::Enter), Asked::Submit);
        let add = form.as_tabs_add().unwrap();
        assert_eq!(add.mode, "share");
        assert_eq!(add.name, "filzs");
        assert_eq!(add.paths, [PathBuf::from("a.txt"), PathBuf::from("dir/b")]);
        // Paths with spaces are quoted as in a shell; an open quote is an error in the form.
        form.paths.text = r#"'My file.pdf' dir/My\ notes "x y""#.to_owned();
        let add = form.as_tabs_add().unwrap();
        assert_eq!(
            add.paths,
            ["My file.pdf", "dir/My notes", "x y"].map(PathBuf::from)
        );
        form.paths.text = r#""open"#.to_owned();
        assert!(
            form.as_tabs_add()
                .unwrap_err()
                .contains("a quote is not closed")
        );
        assert!(add.public);
        assert_eq!(add.plugin, None);
        assert_eq!(press(&mut form, KeyCode::Esc), Asked::Cancel);
    }

    #[test]
    fn modes_cycle_both_ways_plugins_included() {
        let mut form = Form::new(modes(), 1);
        press(&mut form, KeyCode::Left);
        let add = form.as_tabs_add().unwrap();
        assert_eq!(add.mode, "pastebin");
        assert_eq!(add.plugin, Some("/lib/libpastebin.so".into()));
        press(&mut form, KeyCode::Right);
        assert_eq!(form.as_tabs_add().unwrap().mode, "chat");
    }

    #[test]
    fn a_field_is_bounded_and_takes_no_control_character() {
        let mut field = Field::default();
        for _ in 0..MAX_FIELD + 10 {
            field.key(KeyCode::Char('é'));
        }
        field.key(KeyCode::Char('\u{1b}'));
        assert_eq!(field.text.chars().count(), MAX_FIELD);
        field.key(KeyCode::Home);
        field.key(KeyCode::Delete);
        assert_eq!(field.text.chars().count(), MAX_FIELD - 1);
    }

    #[test]
    fn a_paste_is_text_in_the_field_never_keys_and_is_bounded() {
        let mut form = Form::new(modes(), 1);
        // On the mode: nothing, not even a mode change.
        form.paste(" \r");
        assert_eq!(form.as_tabs_add().unwrap().mode, "chat");
        press(&mut form, KeyCode::Tab);
        press(&mut form, KeyCode::Tab);
        typed(&mut form, "x");
        press(&mut form, KeyCode::Home);
        form.paste("a.txt\rb.txt\n\tc\u{1b}");
        let add = form.as_tabs_add().unwrap();
        assert_eq!(form.paths.text, "a.txt b.txt  c x");
        assert_eq!(form.paths.cursor, 15);
        assert_eq!(add.paths.len(), 4);
        assert!(!form.pending);
        form.paste(&"é".repeat(MAX_FIELD));
        assert_eq!(form.paths.text.chars().count(), MAX_FIELD);
        assert!(form.paths.text.starts_with("a.txt b.txt  c é") && form.paths.text.ends_with("éx"));
        form.pending = true;
        press(&mut form, KeyCode::Tab);
        assert!(
            form.lines()
                .iter()
                .any(|line| line.to_string() == "Esc closes this; the tab still opens")
        );
    }

    #[test]
    fn while_the_tab_is_opened_the_form_changes_no_more() {
        let mut form = Form::new(modes(), 1);
        form.pending = true;
        press(&mut form, KeyCode::Right);
        assert_eq!(form.as_tabs_add().unwrap().mode, "chat");
        assert_eq!(press(&mut form, KeyCode::Enter), Asked::Nothing);
        assert_eq!(press(&mut form, KeyCode::Esc), Asked::Cancel);
    }
}
