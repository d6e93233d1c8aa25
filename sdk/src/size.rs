//! [`ByteSize`]: a number of bytes, as people write it in a config and read it on a page.
//!
//! One display format everywhere (pages, the console, the pages' JavaScript):
//! - under 1 KiB, the exact count: `0 bytes`, `1 byte`, `12 bytes`;
//! - from 1 KiB on, powers of 1024 with one decimal, a `.0` dropped: `1.5 KiB`, `60 MiB`,
//!   `3 GiB`. The tenths are rounded half up, in integers (no floating point, so the Rust
//!   and JavaScript formatters agree on every value), and a value that rounds to 1024 of a
//!   unit is shown in the next one (`1 MiB`, not `1024 KiB`).
//!
//! The same formatter for pages' scripts is [`BYTES_JS`] (serve it as a script file of its
//! own); `sdk/tests/size_js.rs` checks that both agree.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The JavaScript twin of [`ByteSize`]'s `Display`: defines `onionhostBytes(n)` (a number or
/// a `BigInt` of bytes, to a string). Serve it as a script of its own (the Content-Security-
/// Policy forbids inline script).
pub const BYTES_JS: &str = include_str!("../assets/bytes.js");

const KIB: u64 = 1024;

/// The units a size may be written in, with their number of bytes.
const UNITS: [(&str, u64); 15] = [
    ("b", 1),
    ("byte", 1),
    ("bytes", 1),
    ("kb", 1000),
    ("mb", 1000 * 1000),
    ("gb", 1000 * 1000 * 1000),
    ("tb", 1000 * 1000 * 1000 * 1000),
    ("pb", 1000 * 1000 * 1000 * 1000 * 1000),
    ("eb", 1000 * 1000 * 1000 * 1000 * 1000 * 1000),
    ("kib", KIB),
    ("mib", KIB * KIB),
    ("gib", KIB * KIB * KIB),
    ("tib", KIB * KIB * KIB * KIB),
    ("pib", KIB * KIB * KIB * KIB * KIB),
    ("eib", KIB * KIB * KIB * KIB * KIB * KIB),
];

/// The units of the display, from KiB up.
const DISPLAY_UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// A number of bytes: in a config an integer (`1048576`) or a string with a unit (`"1 MiB"`,
/// `"2.5 GB"`, `"12 bytes"`). Units, in any case: B, byte(s), KB, MB, GB, TB, PB, EB (powers
/// of 1000) and KiB, MiB, GiB, TiB, PiB, EiB (powers of 1024). Shown as `1.5 KiB` (see the
/// [module](self) doc); written back to a config exactly ([`ByteSize::to_config_string`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// Why a text is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    /// The text has no number, or a malformed one.
    #[error("{0:?} is not a size: write a number of bytes or e.g. \"2 GiB\"")]
    NotASize(String),
    /// The unit is not one of the known ones.
    #[error(
        "unknown unit {unit:?} in {text:?}: use B, KB, MB, GB, TB, PB, EB, KiB, MiB, GiB, TiB, \
         PiB or EiB"
    )]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// The size does not fit in 64 bits.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

impl ByteSize {
    /// A size of `n` KiB.
    pub const fn kib(n: u64) -> Self {
        Self(n * KIB)
    }

    /// A size of `n` MiB.
    pub const fn mib(n: u64) -> Self {
        Self(n * KIB * KIB)
    }

    /// A size of `n` GiB.
    pub const fn gib(n: u64) -> Self {
        Self(n * KIB * KIB * KIB)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `"2 GiB"`, `"500MB"`, `"1.5 MiB"`, `"12 bytes"`, `"1024"`. A fraction is rounded
    /// to the nearest byte.
    pub fn parse(text: &str) -> Result<Self, ByteSizeError> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let unit = unit.trim();
        let lower = unit.to_ascii_lowercase();
        let multiplier = if lower.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(name, _)| *name == lower)
                .map(|&(_, bytes)| bytes)
                .ok_or_else(|| ByteSizeError::UnknownUnit {
                    unit: unit.to_owned(),
                    text: text.to_owned(),
                })?
        };
        let not_a_size = || ByteSizeError::NotASize(text.to_owned());
        let too_large = || ByteSizeError::TooLarge(text.to_owned());
        let (whole, fraction) = match number.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (number, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
            return Err(not_a_size());
        }
        if number.ends_with('.') || number.starts_with('.') {
            return Err(not_a_size());
        }
        // Exact integer arithmetic: whole * multiplier + round(0.fraction * multiplier).
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let mut bytes = whole
            .checked_mul(u128::from(multiplier))
            .ok_or_else(too_large)?;
        if !fraction.is_empty() {
            // Beyond 20 digits a fraction cannot change the rounded number of bytes (the
            // multiplier is below 10^19).
            let fraction = &fraction[..fraction.len().min(20)];
            let numerator: u128 = fraction.parse().map_err(|_| not_a_size())?;
            let denominator = 10u128.pow(fraction.len() as u32);
            bytes += (numerator * u128::from(multiplier) + denominator / 2) / denominator;
        }
        u64::try_from(bytes).map(Self).map_err(|_| too_large())
    }

    /// The size as a config would write it, exactly: the largest unit that divides it
    /// (`"3 GiB"`, `"500 MB"`), else bytes (`"1537 B"`). [`ByteSize::parse`] reads it back.
    pub fn to_config_string(self) -> String {
        let n = self.0;
        if n != 0 {
            let mut best: Option<(&str, u64)> = None;
            for &(name, bytes) in &UNITS[3..] {
                if n.is_multiple_of(bytes) && best.is_none_or(|(_, b)| bytes > b) {
                    best = Some((name, bytes));
                }
            }
            if let Some((name, bytes)) = best {
                let unit = match name {
                    "kib" => "KiB",
                    "mib" => "MiB",
                    "gib" => "GiB",
                    "tib" => "TiB",
                    "pib" => "PiB",
                    "eib" => "EiB",
                    other => return format!("{} {}", n / bytes, other.to_ascii_uppercase()),
                };
                return format!("{} {unit}", n / bytes);
            }
        }
        format!("{n} B")
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n < KIB {
            return if n == 1 {
                f.write_str("1 byte")
            } else {
                write!(f, "{n} bytes")
            };
        }
        let n = u128::from(n);
        let mut divisor = u128::from(KIB);
        for (index, unit) in DISPLAY_UNITS.iter().enumerate() {
            let tenths = (n * 10 + divisor / 2) / divisor;
            if tenths < 10 * 1024 || index + 1 == DISPLAY_UNITS.len() {
                return match tenths % 10 {
                    0 => write!(f, "{} {unit}", tenths / 10),
                    tenth => write!(f, "{}.{tenth} {unit}", tenths / 10),
                };
            }
            divisor *= u128::from(KIB);
        }
        unreachable!("the last unit always returns")
    }
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl From<u64> for ByteSize {
    fn from(bytes: u64) -> Self {
        Self(bytes)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_config_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes or a string such as \"2 GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn sizes_are_integers_or_strings_with_units() {
        for (text, bytes) in [
            ("0", 0),
            ("1024", 1024),
            ("1 KiB", 1024),
            ("1kib", 1024),
            ("2 GiB", 2 * GIB),
            ("1.5 MiB", 1024 * 1024 * 3 / 2),
            ("500 MB", 500_000_000),
            ("3 B", 3),
            ("12 bytes", 12),
            ("1 byte", 1),
            ("1 TB", 1_000_000_000_000),
            ("0.5 KiB", 512),
            ("1 EiB", 1 << 60),
            (" 7 ", 7),
        ] {
            assert_eq!(ByteSize::parse(text).unwrap(), ByteSize(bytes), "{text}");
        }
    }

    #[test]
    fn malformed_sizes_are_refused() {
        for bad in [
            "",
            "GiB",
            "1 GB GB",
            "1 gigabyte",
            "-1",
            "1e3",
            "1..2 MB",
            "1. MB",
            ".5 MB",
            ".",
            "99999999999 TiB",
            "16 EiB",
            "18446744073709551616",
        ] {
            assert!(ByteSize::parse(bad).is_err(), "{bad}");
        }
    }

    /// Regression: the same kind of value read "3.0 GiB" on the console, "3 GiB" in receive
    /// and "12 bytes" in share; receive's pages disagreed ("60 MiB" vs "60.0 MiB").
    #[test]
    fn one_display_format() {
        for (bytes, shown) in [
            (0, "0 bytes"),
            (1, "1 byte"),
            (12, "12 bytes"),
            (1023, "1023 bytes"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (1587, "1.5 KiB"),
            (1588, "1.6 KiB"),
            (60 * 1024 * 1024, "60 MiB"),
            (3 * GIB, "3 GiB"),
            (1024 * 1024 - 1, "1 MiB"),
            (1024 * 1024 - 52, "1023.9 KiB"),
            (u64::MAX, "16 EiB"),
        ] {
            assert_eq!(ByteSize(bytes).to_string(), shown, "{bytes}");
        }
    }

    #[test]
    fn config_strings_are_exact() {
        assert_eq!(ByteSize(0).to_config_string(), "0 B");
        assert_eq!(ByteSize(1537).to_config_string(), "1537 B");
        assert_eq!(ByteSize(3 * GIB).to_config_string(), "3 GiB");
        assert_eq!(ByteSize(500_000_000).to_config_string(), "500 MB");
        assert_eq!(ByteSize(1536).to_config_string(), "1536 B");
        assert_eq!(ByteSize(1 << 60).to_config_string(), "1 EiB");
    }

    #[test]
    fn serde_reads_integers_and_strings() {
        #[derive(Deserialize, Serialize, PartialEq, Debug)]
        struct Section {
            a: ByteSize,
            b: ByteSize,
        }
        let section: Section = toml::from_str("a = 2048\nb = \"3 GiB\"").unwrap();
        assert_eq!(section.a, ByteSize(2048));
        assert_eq!(section.b, ByteSize(3 * GIB));
        let written = toml::to_string(&section).unwrap();
        assert_eq!(toml::from_str::<Section>(&written).unwrap(), section);
        assert!(toml::from_str::<Section>("a = -5\nb = 1").is_err());
    }

    proptest! {
        #[test]
        fn config_strings_round_trip(n: u64) {
            let size = ByteSize(n);
            prop_assert_eq!(ByteSize::parse(&size.to_config_string()).unwrap(), size);
        }

        /// What is shown reads back within the rounding of one decimal.
        #[test]
        fn display_reads_back_within_its_rounding(n: u64) {
            let shown = ByteSize(n).to_string();
            // Only "16 EiB" (rounded up from just under 2^64) does not fit.
            let read = match ByteSize::parse(&shown) {
                Ok(size) => size.0,
                Err(ByteSizeError::TooLarge(_)) => u64::MAX,
                Err(err) => return Err(TestCaseError::fail(err.to_string())),
            };
            let error = read.abs_diff(n);
            // At most half a tenth of the unit shown (plus half a byte), and the unit is at
            // most about the value itself.
            prop_assert!(u128::from(error) * 19 <= u128::from(n), "{n} -> {shown} -> {read}");
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,24}") {
            let _ = ByteSize::parse(&text);
        }

        #[test]
        fn numbers_with_units_parse(whole in 0u64..100_000, tenth in 0u64..10, unit in 0usize..15) {
            let (name, bytes) = UNITS[unit];
            let text = format!("{whole}.{tenth} {name}");
            let expected = u128::from(whole) * u128::from(bytes)
                + (u128::from(tenth) * u128::from(bytes) + 5) / 10;
            match u64::try_from(expected) {
                Ok(expected) => prop_assert_eq!(ByteSize::parse(&text).unwrap().0, expected),
                Err(_) => prop_assert!(ByteSize::parse(&text).is_err()),
            }
        }
    }
}
