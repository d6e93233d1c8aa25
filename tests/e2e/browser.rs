//! The pages of every mode in a real browser (headless Chromium, see
//! `onionhost_tests::browser`): what visitors do with them, with JavaScript and without, on a
//! desktop and a phone. One browser serves every test of the run; each test has its own
//! pages in browser contexts of their own, so the tests run in parallel.

mod chat;
mod nojs;
mod receive;
