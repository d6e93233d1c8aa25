//! The receive mode of onionhost.
