//! The share mode of onionhost.
