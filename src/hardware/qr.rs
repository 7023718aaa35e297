//! The QR code as the small display can show it: version 3 (29×29 modules), drawn at two
//! pixels per module with a one-module quiet zone, dark modules on lit pixels.
//!
//! The payload is split into optimal mixed segments (alphanumeric where it can be, bytes
//! where it must), tried at error correction M, then L; a payload that fits neither is
//! refused, never drawn at a size the display cannot hold. This module encodes and draws;
//! it never chooses what a payload says.

use qrcode::bits::Bits;
use qrcode::types::QrError as EncodeError;
use qrcode::{Color, EcLevel, QrCode, Version};

use crate::hardware::frame::Frame;

/// The one QR version the display holds at two pixels per module with a quiet zone.
pub const VERSION: i16 = 3;
/// Modules across a version 3 code.
pub const MODULES: u32 = 29;
/// Pixels per module.
pub const SCALE: u32 = 2;
/// Modules of lit margin around the code.
pub const QUIET_ZONE: u32 = 1;
/// Pixels across the drawn code, quiet zone included (62).
pub const SIDE: u32 = (MODULES + 2 * QUIET_ZONE) * SCALE;

/// Characters of QR alphanumeric mode (`0-9 A-Z $%*+-./:` and space) version 3 holds at
/// error correction L.
pub const MAX_ALPHANUMERIC: usize = 77;
/// Bytes version 3 holds at error correction L when nothing is alphanumeric.
pub const MAX_BYTES: usize = 53;

/// Why a payload cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// The payload does not fit version 3 even at error correction L. `max` is what fits
    /// of a payload of this kind: alphanumeric characters when every character is one,
    /// bytes otherwise.
    #[error(
        "the QR payload is {len} characters; the display holds at most {max} of its kind \
         (QR version 3 at error correction L)"
    )]
    TooLong { len: usize, max: usize },
    /// The encoder refused the payload for another reason.
    #[error("the QR payload cannot be encoded: {0}")]
    Encode(String),
}

/// The error correction level a code was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correction {
    /// About 15 % of the code may be damaged.
    Medium,
    /// About 7 %; used only when the payload does not fit at M.
    Low,
}

/// An encoded code: which modules are dark.
#[derive(Clone, PartialEq, Eq)]
pub struct QrMatrix {
    width: u32,
    dark: Vec<bool>,
    correction: Correction,
}

impl std::fmt::Debug for QrMatrix {
    // The modules spell the payload, which may be a pairing secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrMatrix")
            .field("width", &self.width)
            .field("correction", &self.correction)
            .finish_non_exhaustive()
    }
}

impl QrMatrix {
    /// Encodes `payload` as version 3, at M if it fits, else at L.
    pub fn encode(payload: &str) -> Result<QrMatrix, QrError> {
        for (level, correction) in [
            (EcLevel::M, Correction::Medium),
            (EcLevel::L, Correction::Low),
        ] {
            match Self::encode_at(payload.as_bytes(), level) {
                Ok(code) => {
                    let width = u32::try_from(code.width()).unwrap_or(0);
                    let dark = code.to_colors().into_iter().map(|c| c == Color::Dark);
                    return Ok(QrMatrix {
                        width,
                        dark: dark.collect(),
                        correction,
                    });
                }
                Err(EncodeError::DataTooLong) => continue,
                Err(other) => return Err(QrError::Encode(other.to_string())),
            }
        }
        let alphanumeric = payload.bytes().all(is_alphanumeric_mode);
        Err(QrError::TooLong {
            len: payload.chars().count(),
            max: if alphanumeric {
                MAX_ALPHANUMERIC
            } else {
                MAX_BYTES
            },
        })
    }

    /// Each run in its own mode first: that is the layout a pairing payload's budget is
    /// worked out for, and the crate's optimizer sometimes folds a short run into a byte
    /// segment and spills a payload that fits at M over to L. Then the optimizer's
    /// layout, which does better on text that switches mode often.
    fn encode_at(data: &[u8], level: EcLevel) -> Result<QrCode, EncodeError> {
        let laid_out = |runs: bool| -> Result<QrCode, EncodeError> {
            let mut bits = Bits::new(Version::Normal(VERSION));
            if runs {
                push_runs(&mut bits, data)?;
            } else {
                bits.push_optimal_data(data)?;
            }
            bits.push_terminator(level)?;
            QrCode::with_bits(bits, level)
        };
        laid_out(true).or_else(|_| laid_out(false))
    }

    /// Modules across (29).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The error correction level the payload fitted at.
    pub fn correction(&self) -> Correction {
        self.correction
    }

    /// Whether the module at (`x`, `y`) is dark; outside the code is light.
    pub fn is_dark(&self, x: u32, y: u32) -> bool {
        if x >= self.width || y >= self.width {
            return false;
        }
        self.dark
            .get((y * self.width + x) as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Draws the code with its quiet zone into `frame`, its top left corner at
    /// (`left`, `top`): [`SIDE`] pixels square, light modules and quiet zone lit.
    pub fn draw(&self, frame: &mut Frame, left: u32, top: u32) {
        let side = (self.width + 2 * QUIET_ZONE) * SCALE;
        frame.fill_rect(left, top, side, side, true);
        for y in 0..self.width {
            for x in 0..self.width {
                if self.is_dark(x, y) {
                    frame.fill_rect(
                        left + (x + QUIET_ZONE) * SCALE,
                        top + (y + QUIET_ZONE) * SCALE,
                        SCALE,
                        SCALE,
                        false,
                    );
                }
            }
        }
    }
}

/// Pushes `data` as alternating segments: each run of alphanumeric-mode characters in
/// alphanumeric mode, each run of anything else in byte mode.
pub fn push_runs(bits: &mut Bits, data: &[u8]) -> Result<(), EncodeError> {
    for run in data.chunk_by(|a, b| is_alphanumeric_mode(*a) == is_alphanumeric_mode(*b)) {
        if run.first().copied().is_some_and(is_alphanumeric_mode) {
            bits.push_alphanumeric_data(run)?;
        } else {
            bits.push_byte_data(run)?;
        }
    }
    Ok(())
}

/// Whether QR alphanumeric mode can hold this byte.
pub fn is_alphanumeric_mode(byte: u8) -> bool {
    matches!(byte, b'0'..=b'9' | b'A'..=b'Z' | b' ' | b'$' | b'%' | b'*' | b'+' | b'-' | b'.' | b'/' | b':')
}

/// `url` with its scheme and host in upper case (both are case-insensitive), so that part
/// fits QR alphanumeric mode; the path, which a server may read case-sensitively, is kept.
pub fn uppercase_origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url
        .get(after_scheme..)
        .and_then(|rest| rest.find(['/', '?', '#']))
        .map_or(url.len(), |i| after_scheme + i);
    match (url.get(..end), url.get(end..)) {
        (Some(origin), Some(rest)) => format!("{}{rest}", origin.to_ascii_uppercase()),
        _ => url.to_string(),
    }
}
