//! Units a config file writes as text: durations (`"30s"`, `"2m"`), sizes (`"64m"`) and
//! CPU fractions. Each parses with an error that says what would be valid.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A fraction of one CPU, written as a number (`0.5`) or a string (`"0.5"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuFraction(pub f64);

impl Serialize for CpuFraction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for CpuFraction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CpuFraction;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a fraction of one CPU such as 0.5 or \"0.5\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<CpuFraction, E> {
                Ok(CpuFraction(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CpuFraction, E> {
                Ok(CpuFraction(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CpuFraction, E> {
                Ok(CpuFraction(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CpuFraction, E> {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(CpuFraction)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "invalid CPU fraction {v:?}: write a number such as \"0.5\""
                        ))
                    })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A duration written as a string with a unit (`"30s"`, `"5m"`, `"7d"`) or a bare
/// number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"30s\", \"5m\", \"2h\", \"7d\" or a number of seconds",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(|secs| Seconds(Duration::from_secs(secs)))
                    .map_err(|_| E::custom(format!("invalid duration {v}: must not be negative")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(Duration::from_secs(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                parse_duration(v).map(Seconds).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Parses `"30s"`, `"5m"`, `"2h"`, `"7d"`, `"1h 30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Ok(secs) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(trimmed).map_err(|err| {
        format!(
            "invalid duration {text:?} ({err}): write a number and a unit, such as \"30s\", \"5m\", \"2h\" or \"7d\""
        )
    })
}

/// A size in bytes written as a number or with a binary unit: `"512k"`, `"256m"`, `"1g"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"512k\", \"256m\", \"1g\" or a number of bytes")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Parses a size with an optional binary unit (`k`, `m`, `g`, also written `kb`, `KiB`,
/// ...). Written by hand because the size crates disagree on whether `m` means 10^6 or
/// 2^20, and memory limits here always mean 2^20.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid size {text:?}: write a number and a unit, such as \"512k\", \"256m\" or \"1g\""
        )
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}
