//! End-to-end tests of onionhost.
