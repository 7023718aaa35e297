//! What can go wrong with the display, button and LED, named after what failed. A leaf:
//! every other file of `hardware` reports through it, and it imports none of them.

use crate::fsutil::IoError;

/// Why a piece of hardware could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    /// The payload does not fit the display's QR code.
    #[error(transparent)]
    Qr(#[from] crate::hardware::qr::QrError),
    /// The I2C bus could not be opened.
    #[error("cannot open I2C bus {bus}: {reason}")]
    I2cBus { bus: u8, reason: String },
    /// The SSD1306 did not answer or refused a transfer.
    #[error("the SSD1306 display at I2C address {address:#04x} failed: {reason}")]
    Ssd1306 { address: u8, reason: String },
    /// The Linux framebuffer could not be used.
    #[error("framebuffer {path}: {reason}")]
    Framebuffer { path: String, reason: String },
    /// A GPIO pin could not be claimed or driven.
    #[error("GPIO {pin} ({role}): {reason}")]
    Gpio {
        pin: u8,
        role: &'static str,
        reason: String,
    },
    /// This build or host has no such device (off a Pi, or not Linux).
    #[error("{0} is not available on this host")]
    Unavailable(&'static str),
    #[error("cannot encode PNG: {0}")]
    Png(String),
    #[error(transparent)]
    Io(#[from] IoError),
    /// Writing to the terminal failed.
    #[error("cannot draw on the terminal: {0}")]
    Terminal(#[source] std::io::Error),
}
