//! Characters that can disguise text, and what to do with them: one list for every mode and
//! the host's console.
//!
//! A visitor's text (a file name, a chat name, a message shown on the console) can carry
//! characters that draw nothing, reorder what follows (`txt.exe` shown as `exe.txt` with
//! U+202E), break a line, or make two different strings look the same. [`is_disguising`] is
//! the one predicate for them; [`show`], [`replace`] and [`strip`] are the three ways to
//! neutralise them, and [`find`] tells which kind a character is, for an error message.
//!
//! What is disguising:
//! - controls (`Cc`: C0, DEL, C1; tabs and newlines included);
//! - format characters (`Cf`): bidi marks, embeddings, overrides and isolates (U+061C,
//!   U+200E-U+200F, U+202A-U+202E, U+2066-U+2069), zero-width characters (U+200B-U+200D),
//!   U+2060-U+2064, U+FEFF, the soft hyphen, the tag characters U+E0000-U+E007F...;
//! - the line and paragraph separators U+2028 and U+2029;
//! - spaces other than U+0020 (no-break, en, em, ideographic...), which look like a space
//!   but are not one;
//! - characters that are letters by category but draw nothing: Hangul fillers (U+115F,
//!   U+1160, U+3164, U+FFA0), the braille blank U+2800, the combining grapheme joiner U+034F,
//!   the Khmer inherent vowels U+17B4-U+17B5, the Mongolian free variation selectors
//!   U+180B-U+180F;
//! - private-use, surrogate and unassigned code points, which no one can tell apart.
//!
//! Variation selectors (U+FE00-U+FE0F, U+E0100-U+E01EF) are not in the list: they choose how
//! the character before them is drawn (emoji), and a mode that wants to bound them (chat's
//! names) does so itself.

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// Which kind of disguising character a character is (see the [module](self) doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disguise {
    /// A control character (`Cc`), including tab, line feed and escape.
    Control,
    /// A character that marks, embeds, overrides or isolates a text direction.
    Bidi,
    /// A character that draws nothing, breaks a line, or only looks like a space.
    Invisible,
    /// A private-use, surrogate or unassigned code point.
    Unassigned,
}

/// Whether `c` can disguise text (see the [module](self) doc).
pub fn is_disguising(c: char) -> bool {
    find(c).is_some()
}

/// Which kind of disguising character `c` is, if it is one.
pub fn find(c: char) -> Option<Disguise> {
    if c.is_ascii() {
        // The common case, without a table lookup.
        return (c.is_ascii_control()).then_some(Disguise::Control);
    }
    if c.is_control() {
        return Some(Disguise::Control);
    }
    if is_bidi_control(c) {
        return Some(Disguise::Bidi);
    }
    if c.is_whitespace() || is_blank_letter(c) {
        return Some(Disguise::Invisible);
    }
    match c.general_category() {
        GeneralCategory::Format
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator => Some(Disguise::Invisible),
        GeneralCategory::PrivateUse | GeneralCategory::Surrogate | GeneralCategory::Unassigned => {
            Some(Disguise::Unassigned)
        }
        _ => None,
    }
}

/// The characters that embed, override, isolate or mark a text direction (all `Cf`, named
/// apart because they are the classic way to disguise a name).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters that are letters or symbols by category but draw nothing, so a name made of
/// them would look empty.
fn is_blank_letter(c: char) -> bool {
    matches!(
        c,
        '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'
            ..='\u{180F}' | '\u{2800}' | '\u{3164}' | '\u{FFA0}'
    )
}

/// `text` with every disguising character shown by its code point, `⟨U+202E⟩`, so that what
/// a reader sees is what the text is. Borrowed when there is nothing to show.
pub fn show(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_disguising) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_disguising(c) {
            let _ = write!(shown, "⟨U+{:04X}⟩", u32::from(c));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// `text` with every disguising character replaced by `with` (e.g. `_` in a file name).
pub fn replace(text: &str, with: char) -> Cow<'_, str> {
    if !text.chars().any(is_disguising) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if is_disguising(c) { with } else { c })
            .collect(),
    )
}

/// `text` without its disguising characters.
pub fn strip(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_disguising) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().filter(|&c| !is_disguising(c)).collect())
}

/// Checks a title a user configured (a page's title, a zip's name): 1 to `max_chars`
/// characters, not only spaces, and no disguising character, so that a title cannot disguise
/// itself any more than a file name. The error is a sentence for a config error's message.
pub fn check_title(title: &str, max_chars: usize) -> Result<(), String> {
    let chars = title.chars().count();
    if title.trim().is_empty() || chars > max_chars {
        return Err(format!(
            "must be 1 to {max_chars} characters long, not {chars}"
        ));
    }
    if let Some(c) = title.chars().find(|&c| is_disguising(c)) {
        return Err(format!(
            "must not contain U+{:04X}: control, bidirectional and invisible characters \
             (newlines, tabs, zero-width or look-alike spaces...) could disguise it",
            u32::from(c)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character one of the four lists (host console, share, receive, chat) refused
    /// before they became this one, and those they disagreed on (receive let U+200B through).
    #[test]
    fn the_union_of_the_old_lists_is_disguising() {
        let refused = [
            '\0',
            '\t',
            '\n',
            '\r',
            '\x1b',
            '\x7f',
            '\u{85}',
            '\u{9b}',
            '\u{AD}',
            '\u{034F}',
            '\u{061C}',
            '\u{115F}',
            '\u{1160}',
            '\u{17B4}',
            '\u{17B5}',
            '\u{180B}',
            '\u{180E}',
            '\u{180F}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2061}',
            '\u{2064}',
            '\u{2066}',
            '\u{2069}',
            '\u{206F}',
            '\u{2800}',
            '\u{3164}',
            '\u{FEFF}',
            '\u{FFA0}',
            '\u{FFF9}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{E000}',
            '\u{F0000}',
            '\u{A0}',
            '\u{2003}',
            '\u{3000}',
            '\u{0378}',
        ];
        for c in refused {
            assert!(is_disguising(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn kinds_tell_why() {
        assert_eq!(find('\x1b'), Some(Disguise::Control));
        assert_eq!(find('\u{202E}'), Some(Disguise::Bidi));
        assert_eq!(find('\u{2067}'), Some(Disguise::Bidi));
        assert_eq!(find('\u{200B}'), Some(Disguise::Invisible));
        assert_eq!(find('\u{2028}'), Some(Disguise::Invisible));
        assert_eq!(find('\u{3164}'), Some(Disguise::Invisible));
        assert_eq!(find('\u{E000}'), Some(Disguise::Unassigned));
        assert_eq!(find('a'), None);
    }

    #[test]
    fn ordinary_text_in_many_scripts_is_not_disguising() {
        let text = "Hello wörld – naïve café 日本語 한국어 العربية עברית Ελληνικά кириллица \
                    हिन्दी ไทย 👍🏽 e\u{301} ☃ 1.5 MiB (2) [x] {y} ~ _ - . , ; ' \" `";
        for c in text.chars() {
            assert!(!is_disguising(c), "U+{:04X}", u32::from(c));
        }
        assert!(matches!(show(text), Cow::Borrowed(_)));
    }

    #[test]
    fn variation_selectors_are_left_to_the_modes() {
        assert!(!is_disguising('\u{FE0F}'));
        assert!(!is_disguising('\u{E0100}'));
    }

    #[test]
    fn show_replace_and_strip() {
        let name = "report\u{202E}txt.exe\u{200B}";
        assert_eq!(show(name), "report⟨U+202E⟩txt.exe⟨U+200B⟩");
        assert_eq!(replace(name, '_'), "report_txt.exe_");
        assert_eq!(strip(name), "reporttxt.exe");
        assert_eq!(show("a\x1b[2J"), "a⟨U+001B⟩[2J");
    }
}
