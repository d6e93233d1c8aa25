//! Tor's control protocol on the wire: replies (one line, `250-` continuations, `250+` data
//! blocks ended by `.`), their `KEY=VALUE` arguments with quoted strings, and quoting our own.
//!
//! The grammar is control-spec.txt's §2.3 (replies) and §2.1 (QuotedString). Everything here
//! is pure text in, values out, so every form has a unit test; the connection that feeds it is
//! `control.rs`.

use std::fmt;

/// The longest reply line accepted, in bytes. Tor's longest lines are single keyword lists
/// (`GETINFO config/names` is one line per option); 64 KiB is far above any of them.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// The most lines (data lines included) one reply may have: a descriptor is a few hundred.
const MAX_LINES: usize = 100_000;

/// One complete reply or asynchronous event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The status code: 2xx success, 4xx/5xx failure, 650 an event.
    pub(crate) code: u16,
    /// Its lines, in order, without the code and separator.
    pub(crate) lines: Vec<ReplyLine>,
}

/// One line of a reply, with the data block that followed it (`250+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyLine {
    /// The text after `CODE-`, `CODE+` or `CODE `.
    pub(crate) text: String,
    /// The data lines of a `CODE+` line (dot-unstuffed, without the final `.`).
    pub(crate) data: Option<Vec<String>>,
}

impl Reply {
    /// Whether the code is 2xx.
    pub(crate) fn is_ok(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The text of the first line (an event's name and arguments, or an error message).
    pub(crate) fn first(&self) -> &str {
        self.lines.first().map_or("", |line| line.text.as_str())
    }

    /// The value of `key` in a `250-key=value` line or a `250+key=` data block (GETINFO).
    pub(crate) fn value(&self, key: &str) -> Option<String> {
        self.lines.iter().find_map(|line| {
            let rest = line.text.strip_prefix(key)?.strip_prefix('=')?;
            Some(match &line.data {
                Some(data) => data.join("\n"),
                None => rest.to_owned(),
            })
        })
    }
}

impl fmt::Display for Reply {
    /// The code and the first line only: enough to say why tor refused a command.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.first())
    }
}

/// A reply tor should not have sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReplyError {
    /// A line that is not `DDD` + one of `-`, `+`, ` `.
    #[error("malformed line from tor's control port")]
    Malformed,
    /// A continuation with another code than the reply's first line.
    #[error("tor's control port changed the status code within one reply")]
    MixedCodes,
    /// Too many lines in one reply.
    #[error("a reply from tor's control port has more than {MAX_LINES} lines")]
    TooLong,
}

/// Turns lines (without CRLF) into replies.
#[derive(Debug, Default)]
pub(crate) struct ReplyParser {
    code: Option<u16>,
    lines: Vec<ReplyLine>,
    /// Inside a `+` data block: its lines so far.
    data: Option<Vec<String>>,
    count: usize,
}

impl ReplyParser {
    /// Takes one line; returns the reply it completes, if it does.
    pub(crate) fn line(&mut self, line: &str) -> Result<Option<Reply>, ReplyError> {
        self.count += 1;
        if self.count > MAX_LINES {
            return Err(ReplyError::TooLong);
        }
        if let Some(data) = &mut self.data {
            if line == "." {
                let data = self.data.take();
                if let Some(last) = self.lines.last_mut() {
                    last.data = data;
                }
            } else {
                // A data line that starts with "." has one more in front of it.
                data.push(line.strip_prefix('.').unwrap_or(line).to_owned());
            }
            return Ok(None);
        }
        let bytes = line.as_bytes();
        if bytes.len() < 4 || !bytes[..3].iter().all(u8::is_ascii_digit) {
            return Err(ReplyError::Malformed);
        }
        let code: u16 = line[..3].parse().map_err(|_| ReplyError::Malformed)?;
        if self.code.is_some_and(|first| first != code) {
            return Err(ReplyError::MixedCodes);
        }
        self.code = Some(code);
        self.lines.push(ReplyLine {
            text: line[4..].to_owned(),
            data: None,
        });
        match bytes[3] {
            b'-' => Ok(None),
            b'+' => {
                self.data = Some(Vec::new());
                Ok(None)
            }
            b' ' => {
                let reply = Reply {
                    code,
                    lines: std::mem::take(&mut self.lines),
                };
                *self = Self::default();
                Ok(Some(reply))
            }
            _ => Err(ReplyError::Malformed),
        }
    }
}

/// One argument of a reply line: `KEY=VALUE`, `KEY="quoted value"` or a bare word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arg {
    /// The key, for `KEY=...`.
    pub(crate) key: Option<String>,
    /// The value (unquoted), or the bare word.
    pub(crate) value: String,
}

/// Splits a reply line into its arguments, unquoting quoted values (§2.1: `\\`, `\"`, `\n`,
/// `\r`, `\t` and octal escapes). `None` for an unterminated quote.
pub(crate) fn args(text: &str) -> Option<Vec<Arg>> {
    let mut out = Vec::new();
    let mut rest = text.trim_start_matches(' ');
    while !rest.is_empty() {
        let word_end = rest.find([' ', '"']).unwrap_or(rest.len());
        let (head, tail) = rest.split_at(word_end);
        let (key, value, after) = match head.split_once('=') {
            Some((key, "")) if tail.starts_with('"') => {
                let (value, after) = unquote(tail)?;
                (Some(key.to_owned()), value, after)
            }
            Some((key, value)) => (Some(key.to_owned()), value.to_owned(), tail),
            None if head.is_empty() && tail.starts_with('"') => {
                let (value, after) = unquote(tail)?;
                (None, value, after)
            }
            None => (None, head.to_owned(), tail),
        };
        out.push(Arg { key, value });
        rest = after.trim_start_matches(' ');
    }
    Some(out)
}

/// The value of `key` among `args`.
pub(crate) fn arg<'a>(args: &'a [Arg], key: &str) -> Option<&'a str> {
    args.iter()
        .find(|a| a.key.as_deref() == Some(key))
        .map(|a| a.value.as_str())
}

/// Reads a quoted string at the start of `text` (which starts with `"`); returns its value
/// and what follows it.
fn unquote(text: &str) -> Option<(String, &str)> {
    let mut value = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let value = String::from_utf8(value).ok()?;
                return Some((value, &text[i + 1..]));
            }
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                i += 2;
                match next {
                    b'n' => value.push(b'\n'),
                    b'r' => value.push(b'\r'),
                    b't' => value.push(b'\t'),
                    b'0'..=b'7' => {
                        // Up to three octal digits in all.
                        let mut n = u32::from(next - b'0');
                        for _ in 0..2 {
                            match bytes.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    n = n * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        value.push(u8::try_from(n).ok()?);
                    }
                    other => value.push(other),
                }
            }
            other => {
                value.push(other);
                i += 1;
            }
        }
    }
    None
}

/// `text` as a control-protocol QuotedString.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(lines: &[&str]) -> Vec<Reply> {
        let mut parser = ReplyParser::default();
        lines
            .iter()
            .filter_map(|line| parser.line(line).unwrap())
            .collect()
    }

    #[test]
    fn a_one_line_reply() {
        let replies = parse(&["250 OK"]);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].code, 250);
        assert!(replies[0].is_ok());
        assert_eq!(replies[0].first(), "OK");
    }

    #[test]
    fn an_error_reply_is_not_ok_and_shows_its_code() {
        let reply = &parse(&["552 Unrecognized key \"x\""])[0];
        assert!(!reply.is_ok());
        assert_eq!(reply.to_string(), "552 Unrecognized key \"x\"");
    }

    #[test]
    fn a_multi_line_reply_ends_at_its_space_line() {
        let replies = parse(&[
            "250-ServiceID=abcdef",
            "250-PrivateKey=ED25519-V3:secret",
            "250 OK",
        ]);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].lines.len(), 3);
        assert_eq!(replies[0].value("ServiceID").as_deref(), Some("abcdef"));
        assert_eq!(
            replies[0].value("PrivateKey").as_deref(),
            Some("ED25519-V3:secret")
        );
        assert_eq!(replies[0].value("Service"), None);
    }

    #[test]
    fn a_data_block_is_read_to_its_dot_and_unstuffed() {
        let replies = parse(&["250+onions/current=", "aaaa", "..dotted", ".", "250 OK"]);
        assert_eq!(replies.len(), 1);
        assert_eq!(
            replies[0].lines[0].data,
            Some(vec!["aaaa".to_owned(), ".dotted".to_owned()])
        );
        assert_eq!(
            replies[0].value("onions/current").as_deref(),
            Some("aaaa\n.dotted")
        );
    }

    #[test]
    fn a_data_line_that_looks_like_a_reply_stays_data() {
        let replies = parse(&["250+x=", "250 OK", ".", "250 OK"]);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].value("x").as_deref(), Some("250 OK"));
    }

    #[test]
    fn events_and_replies_come_apart() {
        let replies = parse(&[
            "650 HS_DESC UPLOADED abc UNKNOWN $FP",
            "250-version=0.4.9.11",
            "250 OK",
        ]);
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0].code, 650);
        assert!(replies[0].first().starts_with("HS_DESC UPLOADED abc"));
        assert_eq!(replies[1].value("version").as_deref(), Some("0.4.9.11"));
    }

    #[test]
    fn malformed_lines_are_refused() {
        for line in ["", "25", "abc OK", "250", "250xOK"] {
            assert!(
                ReplyParser::default().line(line).is_err(),
                "{line:?} accepted"
            );
        }
        let mut parser = ReplyParser::default();
        parser.line("250-a").unwrap();
        assert_eq!(parser.line("251 b"), Err(ReplyError::MixedCodes));
    }

    #[test]
    fn a_reply_without_end_is_bounded() {
        let mut parser = ReplyParser::default();
        let mut result = Ok(None);
        for _ in 0..=MAX_LINES {
            result = parser.line("250-x");
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(ReplyError::TooLong));
    }

    #[test]
    fn protocolinfo_arguments_are_split_and_unquoted() {
        let args = args(
            "AUTH METHODS=COOKIE,SAFECOOKIE,HASHEDPASSWORD COOKIEFILE=\"/run/tor/my \\\"cookie\\\"\\\\x\"",
        )
        .unwrap();
        assert_eq!(args[0].key, None);
        assert_eq!(args[0].value, "AUTH");
        assert_eq!(
            arg(&args, "METHODS"),
            Some("COOKIE,SAFECOOKIE,HASHEDPASSWORD")
        );
        assert_eq!(arg(&args, "COOKIEFILE"), Some("/run/tor/my \"cookie\"\\x"));
    }

    #[test]
    fn quoted_escapes_decode() {
        let args = args("A=\"x\\ny\\t\\101\\0\" B=plain \"bare quoted\"").unwrap();
        assert_eq!(arg(&args, "A"), Some("x\ny\tA\0"));
        assert_eq!(arg(&args, "B"), Some("plain"));
        assert_eq!(args[2].key, None);
        assert_eq!(args[2].value, "bare quoted");
    }

    #[test]
    fn an_unterminated_quote_is_refused() {
        assert!(args("COOKIEFILE=\"/run/tor").is_none());
        assert!(args("X=\"ends in a backslash\\").is_none());
    }

    #[test]
    fn quoting_round_trips() {
        for text in [
            "plain",
            "with \"quotes\"",
            "back\\slash",
            "new\nline\r\t",
            "",
        ] {
            let quoted = quote(text);
            assert!(!quoted.contains(['\r', '\n']), "{quoted:?}");
            let parsed = args(&format!("K={quoted}")).unwrap();
            assert_eq!(arg(&parsed, "K"), Some(text));
        }
    }
}
