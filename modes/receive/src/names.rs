//! Turning the file name a visitor sent into one that is safe to create in the upload folder.
//!
//! The name keeps what the visitor meant (Unicode included) but can never point elsewhere
//! (no directory parts), hide itself (no leading dots), mislead (no bidi overrides or control
//! characters) or fail to be created (length bounded, characters other systems refuse
//! replaced), so that a received folder can be copied anywhere.

/// The longest file name most file systems accept, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 255;

/// An extension longer than this is treated as part of the stem when a name is shortened.
const MAX_EXTENSION_BYTES: usize = 32;

/// The name given to a file whose name is empty once cleaned.
pub(crate) const FALLBACK_NAME: &str = "file";

/// A safe file name for `raw`, the name a visitor's browser sent.
pub(crate) fn sanitize(raw: &str) -> String {
    // Browsers send a base name, but old ones and scripts may send a full path of either kind.
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let replaced: String = base
        .chars()
        .map(|c| if is_refused(c) { '_' } else { c })
        .collect();
    let trimmed = replaced.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let mut name = if trimmed.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        trimmed.to_owned()
    };
    if is_windows_device_name(&name) {
        name.insert(0, '_');
    }
    shorten(&name, MAX_NAME_BYTES)
}

/// The `n`-th alternative to `name` when `name` is taken: `photo (1).jpg`, `photo (2).jpg`;
/// still at most [`MAX_NAME_BYTES`] long.
pub(crate) fn numbered(name: &str, n: u32) -> String {
    let (stem, extension) = split_extension(name);
    let suffix = format!(" ({n}){extension}");
    let stem = cut(stem, MAX_NAME_BYTES.saturating_sub(suffix.len()));
    format!("{stem}{suffix}")
}

/// Characters replaced by `_`: the sdk's disguising characters (controls, bidi marks,
/// invisible characters, line separators, spaces other than U+0020, unassigned code points),
/// and the path and shell-special characters Windows refuses.
fn is_refused(c: char) -> bool {
    onionhost_sdk::text::is_disguising(c)
        || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
}

/// Names Windows reserves for devices, whatever their extension (`CON`, `nul.txt`, `COM1`,
/// `LPT²`). The port number is compared as a character: `¹`, `²` and `³` are reserved like the
/// digits, and each takes two bytes in UTF-8.
fn is_windows_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    let upper = stem.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    let Some(port) = upper
        .strip_prefix("COM")
        .or_else(|| upper.strip_prefix("LPT"))
    else {
        return false;
    };
    let mut chars = port.chars();
    matches!(
        (chars.next(), chars.next()),
        (Some('0'..='9' | '\u{B9}' | '\u{B2}' | '\u{B3}'), None)
    )
}

/// `name` cut to at most `max` bytes, keeping its extension when it has a short one.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, extension) = split_extension(name);
    let stem = cut(stem, max - extension.len());
    let stem = stem.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let stem = if stem.is_empty() { FALLBACK_NAME } else { stem };
    format!("{stem}{extension}")
}

/// `(stem, extension)`, the extension with its dot, or empty when there is none or it is too
/// long to be one.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_EXTENSION_BYTES => name.split_at(dot),
        _ => (name, ""),
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_parts_are_stripped() {
        assert_eq!(sanitize("../../x"), "x");
        assert_eq!(sanitize("..\\..\\x"), "x");
        assert_eq!(sanitize("/etc/passwd"), "passwd");
        assert_eq!(sanitize("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(sanitize("dir/"), FALLBACK_NAME);
    }

    #[test]
    fn empty_and_dot_names_get_a_safe_name() {
        for raw in ["", ".", "..", "...", " ", " . ", "/", "\\"] {
            assert_eq!(sanitize(raw), FALLBACK_NAME, "{raw:?}");
        }
    }

    #[test]
    fn hidden_and_trailing_dots_and_spaces_are_trimmed() {
        assert_eq!(sanitize(".bashrc"), "bashrc");
        assert_eq!(sanitize("  notes.txt . "), "notes.txt");
    }

    #[test]
    fn dangerous_characters_are_replaced() {
        assert_eq!(sanitize("a:b*c?d\"e<f>g|h"), "a_b_c_d_e_f_g_h");
        assert_eq!(sanitize("line\nbreak\ttab\u{0}nul"), "line_break_tab_nul");
        // U+202E would show "exe.txt" as "txt.exe".
        assert_eq!(sanitize("invoice\u{202E}txt.exe"), "invoice_txt.exe");
        assert_eq!(sanitize("a\u{2066}b\u{200F}c\u{FEFF}"), "a_b_c_");
    }

    /// Regression (issue 9): receive's own list of disguising characters missed the zero-width
    /// space U+200B (and its neighbours U+200C, U+200D, U+2060), so `report\u{200B}.pdf` was
    /// saved as a name that reads like `report.pdf`. The sdk's one predicate covers them.
    #[test]
    fn zero_width_characters_are_replaced() {
        assert_eq!(sanitize("report\u{200B}.pdf"), "report_.pdf");
        assert_eq!(sanitize("a\u{200C}b\u{200D}c\u{2060}d"), "a_b_c_d");
        // A name of nothing but invisible characters does not look empty either.
        assert_eq!(sanitize("\u{200B}\u{200B}"), "__");
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(sanitize("Résumé 履歴書 🎉.pdf"), "Résumé 履歴書 🎉.pdf");
        assert_eq!(sanitize("Ελληνικά.txt"), "Ελληνικά.txt");
        assert_eq!(sanitize("<script>.html"), "_script_.html");
    }

    #[test]
    fn windows_device_names_are_defused() {
        assert_eq!(sanitize("CON"), "_CON");
        assert_eq!(sanitize("nul.txt"), "_nul.txt");
        assert_eq!(sanitize("com1.log"), "_com1.log");
        assert_eq!(sanitize("console.txt"), "console.txt");
        assert_eq!(sanitize("CONIN$"), "_CONIN$");
        assert_eq!(sanitize("com10"), "com10");
        assert_eq!(sanitize("lpt"), "lpt");
    }

    /// Regression: `COM¹`..`COM³` and `LPT¹`..`LPT³` were saved unchanged, because the check
    /// wanted a four-byte name and the superscript digits take two bytes each; Windows reserves
    /// them like `COM1`.
    #[test]
    fn superscript_port_numbers_are_windows_device_names_too() {
        for stem in ["COM", "LPT", "com", "Lpt"] {
            for digit in ['\u{B9}', '\u{B2}', '\u{B3}'] {
                let name = format!("{stem}{digit}");
                assert_eq!(sanitize(&name), format!("_{name}"), "{name}");
                let with_extension = format!("{name}.txt");
                assert_eq!(
                    sanitize(&with_extension),
                    format!("_{with_extension}"),
                    "{with_extension}"
                );
            }
        }
        // Other superscripts are not port numbers.
        assert_eq!(sanitize("COM\u{2074}"), "COM\u{2074}");
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary_keeping_the_extension() {
        let name = sanitize(&format!("{}.tar.gz", "é".repeat(300)));
        assert!(name.len() <= MAX_NAME_BYTES, "{}", name.len());
        assert!(name.ends_with("é.gz"), "{name}");
        let name = sanitize(&"x".repeat(1000));
        assert_eq!(name.len(), MAX_NAME_BYTES);
        // An "extension" too long to be one is cut like the rest.
        let name = sanitize(&format!("a.{}", "y".repeat(400)));
        assert_eq!(name.len(), MAX_NAME_BYTES);
    }

    #[test]
    fn numbered_names_keep_the_extension_and_the_bound() {
        assert_eq!(numbered("photo.jpg", 1), "photo (1).jpg");
        assert_eq!(numbered("README", 12), "README (12)");
        assert_eq!(numbered("archive.tar.gz", 2), "archive.tar (2).gz");
        let long = sanitize(&format!("{}.txt", "ü".repeat(200)));
        let numbered = numbered(&long, 99);
        assert!(numbered.len() <= MAX_NAME_BYTES, "{}", numbered.len());
        assert!(numbered.ends_with(" (99).txt"), "{numbered}");
    }

    mod properties {
        //! Property tests of the sanitiser: whatever a visitor's browser sends as a name.

        use proptest::prelude::*;

        use super::super::*;

        /// Characters that make names interesting: separators, dots, spaces, controls, bidi
        /// and invisible characters, what Windows refuses, superscript digits, multi-byte text.
        const INTERESTING: &[char] = &[
            '/', '\\', '.', ' ', '\t', '\n', '\r', '\0', '\u{1B}', '\u{8}', '\u{7F}', '\u{85}',
            ':', '*', '?', '"', '<', '>', '|', '\u{202E}', '\u{2066}', '\u{200F}', '\u{200E}',
            '\u{061C}', '\u{2028}', '\u{2029}', '\u{FEFF}', '\u{B9}', '\u{B2}', '\u{B3}', '1', '0',
            'C', 'O', 'M', 'L', 'P', 'T', 'N', 'U', 'A', 'X', 'R', 'é', '履', '🎉', '\u{3000}',
            '\u{A0}', '\u{200B}', '\u{2060}',
        ];

        /// Names built from device names, extensions and the characters above.
        fn names() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                prop::sample::select(INTERESTING).prop_map(String::from),
                prop::sample::select(
                    &[
                        "CON", "prn", "Aux", "NUL", "COM", "LPT", "CONIN$", "conout$", ".txt",
                        "..", "../", "..\\", "C:\\", ".tar.gz",
                    ][..]
                )
                .prop_map(String::from),
                "[a-z]{1,40}",
            ];
            prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
        }

        /// Device names, with or without a port number and an extension, in any case.
        fn device_names() -> impl Strategy<Value = String> {
            (
                prop::sample::select(&["con", "prn", "aux", "nul", "com", "lpt", "conin$"][..]),
                prop::sample::select(&["", "0", "1", "9", "\u{B9}", "\u{B2}", "\u{B3}"][..]),
                prop::sample::select(&["", ".txt", " .log", ".", " ", ".tar.gz"][..]),
                any::<bool>(),
            )
                .prop_map(|(device, port, extension, upper)| {
                    let name = format!("{device}{port}{extension}");
                    if upper { name.to_uppercase() } else { name }
                })
        }

        fn check(raw: &str) {
            let name = sanitize(raw);
            assert!(!name.is_empty());
            assert!(name.len() <= MAX_NAME_BYTES, "{} bytes", name.len());
            assert!(
                !name.contains(['/', '\\']),
                "{raw:?} gave {name:?} with a separator"
            );
            assert!(
                !name.chars().any(is_refused),
                "{raw:?} gave {name:?} with a refused character"
            );
            assert!(
                !name.starts_with('.') && !name.ends_with('.'),
                "{raw:?} gave {name:?}"
            );
            assert!(name.trim() == name, "{raw:?} gave {name:?}");
            assert!(
                !is_windows_device_name(&name),
                "{raw:?} gave the device name {name:?}"
            );
            assert_eq!(sanitize(&name), name, "a clean name stays as it is");
            for n in [1, 99, u32::MAX] {
                let numbered = numbered(&name, n);
                assert!(numbered.len() <= MAX_NAME_BYTES, "{numbered:?}");
                assert!(!is_windows_device_name(&numbered), "{numbered:?}");
                assert!(!numbered.contains(['/', '\\']), "{numbered:?}");
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn any_string_gives_a_safe_name(raw in any::<String>()) {
                check(&raw);
            }

            #[test]
            fn tricky_names_give_safe_names(raw in names()) {
                check(&raw);
            }

            #[test]
            fn device_names_are_never_kept(raw in device_names()) {
                check(&raw);
            }
        }
    }
}
