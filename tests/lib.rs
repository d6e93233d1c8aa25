//! Shared helpers of the end-to-end tests: build and run the `onionhost` binary, read what it
//! prints, stop it. The tests themselves live in `e2e/`, one module per area.

pub mod browser;
pub mod chat_client;
pub mod firewall;
pub mod host;
pub mod plugins;
pub mod pty;
pub mod testnet;
pub mod tools;
pub mod watchdog;
pub mod web;
