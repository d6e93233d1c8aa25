//! Escaping for the HTML the server writes itself (the pages without JavaScript).

pub(crate) use onionhost_sdk::html::escape;
