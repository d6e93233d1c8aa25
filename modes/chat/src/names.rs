//! Usernames: the rules a chosen name must meet, the keys that make names unique ignoring
//! case and look-alike characters, and random readable names for newcomers.

use onionhost_sdk::text::{self, Disguise};
use rand::Rng;
use rand::seq::IndexedRandom;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The most characters a name may have once normalised.
pub(crate) const MAX_NAME_CHARS: usize = 32;

/// Input longer than this (in bytes) is refused before it is normalised, so that a hostile
/// name costs nothing to reject. NFKC can expand text, but never a valid name past this.
const MAX_RAW_NAME_BYTES: usize = 1024;

/// More combining marks in a row than this can only be meant to spill over other text.
const MAX_MARKS_IN_A_ROW: usize = 4;

/// Why a requested name was refused. The messages are shown to the visitor who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NameError {
    /// Nothing visible is left.
    #[error("A name needs at least one visible character.")]
    Empty,
    /// Over [`MAX_NAME_CHARS`].
    #[error("A name can have at most {MAX_NAME_CHARS} characters.")]
    TooLong,
    /// A control character (newline, tab, escape...).
    #[error("A name cannot contain control characters (found U+{0:04X}).")]
    Control(u32),
    /// A character that changes the direction of the text around it.
    #[error("A name cannot contain characters that change the text direction (found U+{0:04X}).")]
    Bidi(u32),
    /// A character that shows nothing: zero-width, formatting, blank, private or unassigned.
    #[error("A name cannot contain invisible or unassigned characters (found U+{0:04X}).")]
    Invisible(u32),
    /// A combining mark with nothing to combine with, or a pile of them.
    #[error(
        "A name cannot start with a combining mark or stack more than {MAX_MARKS_IN_A_ROW} of them."
    )]
    Marks,
}

/// Normalises a requested name (NFKC, spaces trimmed and collapsed) and checks it against
/// every rule. Returns the name to show.
pub(crate) fn normalize_name(raw: &str) -> Result<String, NameError> {
    if raw.len() > MAX_RAW_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    let mut name = String::with_capacity(raw.len());
    let mut pending_space = false;
    let mut marks_in_a_row = 0;
    for c in raw.nfkc() {
        check_char(c)?;
        if c == ' ' {
            pending_space = !name.is_empty();
            marks_in_a_row = 0;
            continue;
        }
        let is_mark = c.general_category_group() == GeneralCategoryGroup::Mark;
        if is_mark {
            // A mark after a space would combine with the space (or with nothing).
            if name.is_empty() || pending_space {
                return Err(NameError::Marks);
            }
            marks_in_a_row += 1;
            if marks_in_a_row > MAX_MARKS_IN_A_ROW {
                return Err(NameError::Marks);
            }
        } else {
            marks_in_a_row = 0;
        }
        if pending_space {
            name.push(' ');
            pending_space = false;
        }
        name.push(c);
    }
    match name.chars().count() {
        0 => Err(NameError::Empty),
        n if n > MAX_NAME_CHARS => Err(NameError::TooLong),
        _ => Ok(name),
    }
}

/// The key under which a (normalised) name must be unique: the same for names that differ
/// only in case, including case mappings that change length (`ß` and `SS`).
///
/// Lowercasing first matters: the capital sharp s `ẞ` uppercases to itself and lowercases to
/// `ß`, so upper-then-lower alone would keep `STRAẞE` apart from `strasse`. Lower, upper,
/// lower gives the same classes as Unicode's full case folding.
///
/// Variation selectors are left out of the key: a name may use one (an emoji's `U+FE0F`), but
/// they draw nothing of their own, so `Ann` followed by one must not pass for a second `Ann`.
pub(crate) fn name_key(name: &str) -> String {
    let visible: String = name
        .chars()
        .filter(|&c| !is_variation_selector(c))
        .collect();
    visible
        .to_lowercase()
        .to_uppercase()
        .to_lowercase()
        .nfkc()
        .collect()
}

/// Everything a name must not share with a present member's: its case-folded [`name_key`],
/// and the confusable skeletons (UTS #39) of the name as shown and of that key.
///
/// A skeleton maps every character to the prototype of its class of look-alikes (Cyrillic
/// `а` and Latin `a`, `l` and `I`, `rn` and `m`), so two names with the same skeleton can pass
/// for each other on screen. Skeletons are case-sensitive (`I` looks like `l`, `i` does not),
/// hence two of them: `аlice` meets `alice` through the shown name, `Аlice` (Cyrillic capital)
/// meets `alice` through the folded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameKeys {
    /// [`name_key`] of the name.
    pub(crate) key: String,
    /// The skeleton of the name as shown, and the skeleton of `key` (often the same).
    pub(crate) skeletons: [String; 2],
}

impl NameKeys {
    /// The keys of a normalised name. Linear in the name's length, which is bounded.
    pub(crate) fn of(name: &str) -> Self {
        let key = name_key(name);
        let skeletons = [skeleton(name), skeleton(&key)];
        Self { key, skeletons }
    }
}

/// The UTS #39 skeleton of `text` (variation selectors and other default-ignorable
/// characters dropped, as they draw nothing).
fn skeleton(text: &str) -> String {
    unicode_security::skeleton(text).collect()
}

/// The standard variation selectors, which choose how the character before them is drawn.
fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Refuses the characters that can disguise a name (the sdk's one list), each kind with its
/// own message.
fn check_char(c: char) -> Result<(), NameError> {
    let code = u32::from(c);
    match text::find(c) {
        None => Ok(()),
        Some(Disguise::Control) => Err(NameError::Control(code)),
        Some(Disguise::Bidi) => Err(NameError::Bidi(code)),
        Some(Disguise::Invisible | Disguise::Unassigned) => Err(NameError::Invisible(code)),
    }
}

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brave", "bright", "calm", "clever", "cosy", "curious", "daring", "eager",
    "fancy", "fierce", "gentle", "glad", "golden", "happy", "hidden", "honest", "jolly", "keen",
    "kind", "lively", "lucky", "merry", "mighty", "misty", "nimble", "noble", "patient", "polite",
    "proud", "quick", "quiet", "rapid", "rosy", "shy", "silent", "silver", "sleepy", "sly",
    "smart", "snowy", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wild", "wise", "witty",
    "young", "zesty", "breezy", "cheerful", "dreamy", "frosty", "humble", "plucky", "rustic",
    "serene", "spry", "stout", "velvet",
];

const ANIMALS: &[&str] = &[
    "albatross",
    "badger",
    "beaver",
    "bison",
    "camel",
    "cheetah",
    "crane",
    "crow",
    "deer",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "finch",
    "fox",
    "gecko",
    "gibbon",
    "heron",
    "hippo",
    "ibis",
    "jackal",
    "jaguar",
    "koala",
    "lemur",
    "leopard",
    "lynx",
    "marten",
    "mole",
    "moose",
    "newt",
    "ocelot",
    "octopus",
    "orca",
    "otter",
    "owl",
    "panda",
    "parrot",
    "pelican",
    "penguin",
    "puffin",
    "quail",
    "rabbit",
    "raven",
    "salmon",
    "seal",
    "shark",
    "sloth",
    "sparrow",
    "squid",
    "stork",
    "swan",
    "tapir",
    "tiger",
    "toucan",
    "turtle",
    "walrus",
    "weasel",
    "whale",
    "wolf",
    "wombat",
    "yak",
    "zebra",
    "lobster",
    "mantis",
];

/// A random readable name such as `brave-otter-42`: about 400,000 possibilities, so a clash
/// with a member already present is rare and a few retries always find a free one.
pub(crate) fn random_name() -> String {
    let mut rng = rand::rng();
    let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("quiet");
    let animal = ANIMALS.choose(&mut rng).copied().unwrap_or("otter");
    let number: u16 = rng.random_range(10..100);
    format!("{adjective}-{animal}-{number}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_are_nfkc_normalised() {
        // Full-width letters and the "fi" ligature fold to their plain forms.
        assert_eq!(normalize_name("ＡＢＣ").unwrap(), "ABC");
        assert_eq!(normalize_name("\u{FB01}sh").unwrap(), "fish");
        // A decomposed é composes.
        assert_eq!(normalize_name("e\u{0301}lise").unwrap(), "\u{E9}lise");
    }

    #[test]
    fn spaces_are_trimmed_and_collapsed() {
        assert_eq!(normalize_name("  ann   lee  ").unwrap(), "ann lee");
        // No-break and ideographic spaces become plain spaces under NFKC.
        assert_eq!(normalize_name("ann\u{00A0}\u{3000}lee").unwrap(), "ann lee");
    }

    #[test]
    fn length_is_one_to_thirty_two_visible_characters() {
        assert_eq!(normalize_name(""), Err(NameError::Empty));
        assert_eq!(normalize_name("    "), Err(NameError::Empty));
        assert_eq!(normalize_name("x").unwrap(), "x");
        let max = "é".repeat(32);
        assert_eq!(normalize_name(&max).unwrap(), max);
        assert_eq!(normalize_name(&"é".repeat(33)), Err(NameError::TooLong));
        // Counted after normalisation: the ligature "ﬃ" becomes three letters.
        assert_eq!(
            normalize_name(&"\u{FB03}".repeat(11)),
            Err(NameError::TooLong)
        );
        assert_eq!(
            normalize_name(&"a".repeat(5000)),
            Err(NameError::TooLong),
            "huge input is refused"
        );
    }

    #[test]
    fn control_characters_are_refused() {
        for c in [
            '\n', '\t', '\r', '\u{0}', '\u{1B}', '\u{7F}', '\u{85}', '\u{9B}',
        ] {
            let name = format!("ann{c}lee");
            assert_eq!(
                normalize_name(&name),
                Err(NameError::Control(u32::from(c))),
                "{c:?}"
            );
        }
    }

    #[test]
    fn bidi_controls_are_refused() {
        for c in [
            '\u{202E}', '\u{202D}', '\u{202A}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
            '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            let name = format!("ann{c}lee");
            assert_eq!(
                normalize_name(&name),
                Err(NameError::Bidi(u32::from(c))),
                "{c:?}"
            );
        }
    }

    #[test]
    fn invisible_characters_are_refused() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0041}',
            '\u{E000}',
            '\u{2028}',
            '\u{2029}',
            '\u{3164}',
            '\u{115F}',
            '\u{2800}',
            '\u{034F}',
            '\u{180E}',
            '\u{1680}',
            '\u{0378}',
        ] {
            let name = format!("ann{c}lee");
            assert!(
                matches!(normalize_name(&name), Err(NameError::Invisible(_))),
                "U+{:04X} accepted",
                u32::from(c)
            );
        }
        // The Hangul filler becomes another filler under NFKC; still refused.
        assert!(matches!(
            normalize_name("\u{3164}\u{3164}"),
            Err(NameError::Invisible(_))
        ));
    }

    #[test]
    fn stray_and_stacked_combining_marks_are_refused() {
        assert_eq!(normalize_name("\u{0301}ann"), Err(NameError::Marks));
        assert_eq!(normalize_name("ann \u{0301}lee"), Err(NameError::Marks));
        let zalgo = format!("a{}", "\u{0316}\u{0317}\u{0318}\u{0319}\u{031A}");
        assert_eq!(normalize_name(&zalgo), Err(NameError::Marks));
        // Scripts that need marks still work: Devanagari, and an emoji variation selector.
        assert_eq!(normalize_name("नमस्ते").unwrap(), "नमस्ते");
        assert_eq!(
            normalize_name("\u{2764}\u{FE0F}").unwrap(),
            "\u{2764}\u{FE0F}"
        );
    }

    #[test]
    fn ordinary_names_in_many_scripts_pass() {
        for name in [
            "Zoë",
            "Ørjan",
            "Алиса",
            "李雷",
            "محمد",
            "dana_42",
            "mr. smith",
            "🦊",
        ] {
            assert_eq!(normalize_name(name).unwrap(), name);
        }
    }

    #[test]
    fn keys_ignore_case() {
        assert_eq!(name_key("Ann"), name_key("aNN"));
        assert_eq!(name_key("STRASSE"), name_key("straße"));
        // The capital sharp s is the same letter too (a regression: it had its own key).
        assert_eq!(name_key("STRAẞE"), name_key("strasse"));
        assert_eq!(name_key("ẞ"), name_key("ß"));
        // A variation selector draws nothing: with one, a name is still the same name.
        assert_eq!(name_key("Ann\u{FE00}"), name_key("ann"));
        assert_eq!(name_key("a\u{E0100}nn"), name_key("ann"));
        assert_eq!(name_key("\u{2764}\u{FE0F}"), name_key("\u{2764}"));
        assert_eq!(name_key("ΑΛΙΚΗ"), name_key("αλικη"));
        assert_ne!(name_key("ann"), name_key("anne"));
    }

    fn looks_alike(a: &str, b: &str) -> bool {
        let (a, b) = (NameKeys::of(a), NameKeys::of(b));
        a.skeletons.iter().any(|s| b.skeletons.contains(s))
    }

    /// Regression (issue 9, look-alike names): "аlice" with a Cyrillic а passed as a second
    /// person next to "alice".
    #[test]
    fn look_alike_names_share_a_skeleton() {
        assert!(looks_alike("\u{430}lice", "alice"), "Cyrillic a");
        assert!(
            looks_alike("\u{410}lice", "alice"),
            "Cyrillic capital A, through the key"
        );
        assert!(looks_alike("\u{410}LICE", "ALICE"));
        assert!(looks_alike("Ilya", "llya"), "capital I and small L");
        assert!(looks_alike("paypa1", "paypal"), "digit one and small L");
        assert!(looks_alike("rnary", "mary"), "r n and m");
        assert!(looks_alike("\u{3BF}tto", "otto"), "Greek omicron");
        assert!(
            looks_alike("Ann\u{FE0F}", "ann"),
            "a variation selector draws nothing"
        );
        // Case is still ignored, and different names stay different.
        assert!(looks_alike("ALICE", "alice"));
        assert!(!looks_alike("alice", "alicia"));
        assert!(
            !looks_alike("\u{410}\u{43B}\u{438}\u{441}\u{430}", "alice"),
            "Алиса is another name"
        );
        assert!(!looks_alike("bob", "rob"));
    }

    #[test]
    fn random_names_are_valid_and_varied() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let name = random_name();
            assert_eq!(normalize_name(&name).unwrap(), name);
            assert_eq!(name.split('-').count(), 3, "{name}");
            seen.insert(name);
        }
        assert!(seen.len() > 150, "only {} distinct names", seen.len());
    }

    mod properties {
        use proptest::prelude::*;
        use unicode_properties::GeneralCategory;

        use super::*;

        /// Characters that can disguise a name, by the sdk's one predicate: drawn from the
        /// blocks where they are (controls, Latin-1, the general punctuation block of
        /// zero-width, bidi and separator characters, Hangul fillers, specials, tags, private
        /// use), so that most draws are kept.
        fn disguising() -> impl Strategy<Value = char> {
            prop_oneof![
                0u32..0x100,
                0x2000u32..0x2070,
                prop::sample::select(vec![
                    0x34F, 0x61C, 0x115F, 0x1160, 0x17B4, 0x180E, 0x2800, 0x3164
                ]),
                0xFFA0u32..0x10000,
                0xE0000u32..0xE0080,
                0xE000u32..0xE100,
                0xF0000u32..0xF0100,
            ]
            .prop_filter_map("not disguising", |n| {
                char::from_u32(n).filter(|&c| text::is_disguising(c))
            })
        }

        /// Names as a hostile visitor would try them: letters, look-alikes, marks, spaces,
        /// and every disguising character, mixed.
        fn wild_name() -> impl Strategy<Value = String> {
            let c = prop_oneof![
                3 => any::<char>(),
                2 => disguising(),
                2 => prop::sample::select(vec![
                    'a', 'A', '\u{430}', '\u{410}', 'l', 'I', '1', ' ', '\u{A0}', '\u{3000}',
                    '\u{301}', '\u{316}', '\u{FE0F}', '\u{FB03}', '\u{1E9E}', '\u{DF}',
                ]),
            ];
            prop::collection::vec(c, 0..48).prop_map(|chars| chars.into_iter().collect())
        }

        fn is_mark(c: char) -> bool {
            c.general_category_group() == GeneralCategoryGroup::Mark
        }

        proptest! {
            /// Any input gets an answer, and an accepted name keeps every rule: 1 to 32
            /// characters, no disguising character, no space at either end or two in a
            /// row, no leading or piled-up marks; and it is its own normal form.
            #[test]
            fn accepted_names_keep_the_rules(raw in wild_name()) {
                let Ok(name) = normalize_name(&raw) else {
                    return Ok(());
                };
                let chars: Vec<char> = name.chars().collect();
                prop_assert!((1..=MAX_NAME_CHARS).contains(&chars.len()), "{name:?}");
                for &c in &chars {
                    prop_assert!(
                        !text::is_disguising(c),
                        "{name:?} has U+{:04X}",
                        u32::from(c)
                    );
                    prop_assert!(!c.is_control(), "{name:?}");
                    prop_assert!(c == ' ' || !c.is_whitespace(), "{name:?}");
                    prop_assert!(
                        !matches!(
                            c.general_category(),
                            GeneralCategory::Format
                                | GeneralCategory::PrivateUse
                                | GeneralCategory::Unassigned
                                | GeneralCategory::LineSeparator
                                | GeneralCategory::ParagraphSeparator
                        ),
                        "{name:?} has U+{:04X}",
                        u32::from(c)
                    );
                }
                prop_assert!(!name.starts_with(' ') && !name.ends_with(' '), "{name:?}");
                prop_assert!(!name.contains("  "), "{name:?}");
                prop_assert!(!is_mark(chars[0]), "{name:?}");
                prop_assert!(
                    chars.windows(MAX_MARKS_IN_A_ROW + 1).all(|w| !w.iter().all(|&c| is_mark(c))),
                    "{name:?}"
                );
                prop_assert_eq!(normalize_name(&name), Ok(name.clone()));
            }

            /// Keys are a function of what is shown: names that differ only in case have
            /// the same key and the same skeletons, and computing them never panics.
            #[test]
            fn keys_ignore_case(raw in wild_name()) {
                let Ok(name) = normalize_name(&raw) else {
                    return Ok(());
                };
                let keys = NameKeys::of(&name);
                prop_assert_eq!(&keys.key, &name_key(&keys.key), "the key is its own key");
                if let Ok(upper) = normalize_name(&name.to_uppercase()) {
                    prop_assert_eq!(NameKeys::of(&upper).key, keys.key.clone());
                    let upper = NameKeys::of(&upper);
                    prop_assert_eq!(&upper.skeletons[1], &keys.skeletons[1]);
                }
            }
        }
    }
}
