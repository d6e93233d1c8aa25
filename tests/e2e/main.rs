//! End-to-end tests of onionhost: the real binary, driven over HTTP and WebSocket.
//!
//! One module per area; helpers live in the `onionhost_tests` library next to this folder.
mod bridges;
mod browser;
mod chat;
mod config;
mod console;
mod control;
mod host;
mod live;
mod one_tab;
mod onion;
mod plugin;
mod receive;
mod share;
mod system_tor;
mod testnet;
mod timers;
mod website;
