//! Finding the line of a key: the one walker over a TOML document's spans, and the one
//! mapping of a serde error to the key it is about.
//!
//! A key path is a list of segments as the sdk's `ConfigError::key` writes them: table keys,
//! and array positions as decimal numbers. Which one a segment is follows from the document
//! (a number under an array is a position), so mode sections, `[[tab]]` and `[tor]` all use
//! the same paths and the same walker.

use serde::de::DeserializeOwned;

/// A key path inside a TOML document (`["tor", "authorities", "0", "v3ident"]`).
pub(crate) type KeyPath = Vec<String>;

/// A problem with a value: where it is, and what is wrong.
pub(crate) type Problem = (KeyPath, String);

/// Deserializes `value` into `T`; an error names the offending key.
///
/// The message is serde's, prefixed with the key as a user writes it (`` `fallbacks[0].orport`: ``).
/// An unknown key is reported by serde at its table: the path then points at the key itself,
/// so that its own line is shown.
pub(crate) fn deserialize<T: DeserializeOwned>(value: toml::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut path: KeyPath = onionhost_sdk::host::key_path(err.path());
        let message = err.into_inner().message().trim_end().to_owned();
        if let Some(rest) = message.strip_prefix("unknown field `")
            && let Some((key, _)) = rest.split_once('`')
            && path.last().is_none_or(|last| last != key)
        {
            path.push(key.to_owned());
        }
        let shown = shown(&path);
        let message = if shown.is_empty() {
            message
        } else {
            format!("`{shown}`: {message}")
        };
        (path, message)
    })
}

/// A key path as a user writes it: `authorities[0].v3ident`.
pub(crate) fn shown(path: &[String]) -> String {
    let mut text = String::new();
    for part in path {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            text.push('[');
            text.push_str(part);
            text.push(']');
        } else {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(part);
        }
    }
    text
}

/// The lines of a config text, for messages.
pub(crate) struct Lines<'a> {
    text: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
}

impl<'a> Lines<'a> {
    /// The lines of `text` (which parsed as TOML already; if it does not, no line is found).
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            doc: toml_edit::Document::parse(text).ok(),
        }
    }

    /// The 1-based line of the value at `path`, or of the deepest part of it that exists:
    /// through tables, arrays of tables, arrays and inline tables.
    pub(crate) fn line(&self, path: &[impl AsRef<str>]) -> Option<usize> {
        let mut node = Node::Table(self.doc.as_ref()?.as_table());
        let mut best = None;
        for part in path {
            let Some((span, next)) = node.child(part.as_ref()) else {
                break;
            };
            best = span.or(best);
            node = next;
        }
        best.map(|span| line_of(self.text, span.start))
    }
}

/// A place in a parsed document: the three kinds of nodes that hold children.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d toml_edit::Item),
    Table(&'d toml_edit::Table),
    Value(&'d toml_edit::Value),
}

impl<'d> Node<'d> {
    /// The child named `part` (a key, or a position in an array), with the span that locates
    /// it: its key where it has one, else the value.
    fn child(self, part: &str) -> Option<(Option<std::ops::Range<usize>>, Node<'d>)> {
        match self {
            Node::Item(toml_edit::Item::ArrayOfTables(tables)) => {
                let table = tables.get(part.parse().ok()?)?;
                Some((table.span(), Node::Table(table)))
            }
            Node::Item(toml_edit::Item::Table(table)) => Node::Table(table).child(part),
            Node::Item(toml_edit::Item::Value(value)) => Node::Value(value).child(part),
            Node::Item(toml_edit::Item::None) => None,
            Node::Table(table) => {
                let (key, item) = table.get_key_value(part)?;
                Some((key.span().or_else(|| item.span()), Node::Item(item)))
            }
            Node::Value(toml_edit::Value::Array(array)) => {
                let value = array.get(part.parse().ok()?)?;
                Some((value.span(), Node::Value(value)))
            }
            Node::Value(toml_edit::Value::InlineTable(table)) => {
                let (key, item) = table.get_key_value(part)?;
                Some((key.span().or_else(|| item.span()), Node::Item(item)))
            }
            Node::Value(_) => None,
        }
    }
}

/// The 1-based line of byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}
