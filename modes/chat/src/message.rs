//! Chat messages: the rules a message must meet before it goes to the room.

/// Why a message was refused. The messages are shown to the visitor who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MessageError {
    /// Nothing but white space.
    #[error("An empty message was not sent.")]
    Empty,
    /// Over the room's size limit.
    #[error("A message can be at most {max} bytes long; this one has {len}.")]
    TooLong {
        /// The limit.
        max: usize,
        /// The message's size.
        len: usize,
    },
    /// A control character other than a line break or tab.
    #[error("A message cannot contain control characters (found U+{0:04X}).")]
    Control(u32),
}

/// Checks a message against the rules and returns it as the room will show it: line
/// breaks made uniform (`\r\n` and `\r` become `\n`), white space at both ends removed.
///
/// The text is shown as text only (never as HTML), and each message is a bidirectional
/// isolate on the page, so direction marks inside a message cannot reorder anything else.
pub(crate) fn check_message(text: &str, max_bytes: usize) -> Result<String, MessageError> {
    // Refuse by size before any other work; the size is what the visitor sent.
    if text.len() > max_bytes {
        return Err(MessageError::TooLong {
            max: max_bytes,
            len: text.len(),
        });
    }
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(MessageError::Control(u32::from(c)));
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(MessageError::Empty);
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ordinary_messages_pass_unchanged() {
        for text in [
            "hi",
            "<b>not bold</b>",
            "שלום עולם",
            "tab\there",
            "two\nlines",
        ] {
            assert_eq!(check_message(text, 4096).unwrap(), text);
        }
    }

    #[test]
    fn empty_and_blank_messages_are_refused() {
        for text in ["", " ", "\n\n", " \t \n"] {
            assert_eq!(
                check_message(text, 4096),
                Err(MessageError::Empty),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_size_limit_counts_bytes() {
        let limit = 8;
        assert_eq!(check_message("12345678", limit).unwrap(), "12345678");
        assert_eq!(
            check_message("123456789", limit),
            Err(MessageError::TooLong { max: 8, len: 9 })
        );
        // Five two-byte characters are ten bytes.
        assert_eq!(
            check_message("ééééé", limit),
            Err(MessageError::TooLong { max: 8, len: 10 })
        );
    }

    #[test]
    fn control_characters_other_than_line_breaks_are_refused() {
        for c in ['\u{0}', '\u{7}', '\u{1B}', '\u{7F}', '\u{9B}'] {
            assert_eq!(
                check_message(&format!("a{c}b"), 4096),
                Err(MessageError::Control(u32::from(c)))
            );
        }
    }

    #[test]
    fn line_breaks_are_made_uniform_and_blank_ends_trimmed() {
        assert_eq!(
            check_message("\r\n a\r\nb\rc\n\n", 4096).unwrap(),
            "a\nb\nc"
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any text gets an answer; an accepted message fits the limit, has no control
            /// character but line feeds and tabs, no carriage return, and no white space at
            /// either end.
            #[test]
            fn accepted_messages_keep_the_rules(
                text in prop::collection::vec(
                    prop_oneof![
                        any::<char>(),
                        prop::sample::select(vec!['\r', '\n', '\t', ' ', '\u{1B}', '\u{85}']),
                    ],
                    0..64,
                ).prop_map(|chars| chars.into_iter().collect::<String>()),
                max in 1usize..80,
            ) {
                let Ok(message) = check_message(&text, max) else {
                    return Ok(());
                };
                prop_assert!(message.len() <= max);
                prop_assert!(!message.is_empty());
                prop_assert!(!message.contains('\r'));
                prop_assert!(
                    message.chars().all(|c| !c.is_control() || c == '\n' || c == '\t'),
                    "{message:?}"
                );
                prop_assert_eq!(message.trim(), message.as_str());
                prop_assert_eq!(check_message(&message, max), Ok(message.clone()));
            }
        }
    }
}
