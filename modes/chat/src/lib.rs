//! The chat mode of onionhost.
