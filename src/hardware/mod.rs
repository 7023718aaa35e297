//! The device's own hardware: the small display, the button and the LED.
//!
//! Screens are plain data ([`screens::Screen`]) rendered into a 128×64 one-bit
//! [`frame::Frame`], QR codes included ([`qr`]); a [`Display`](display::Display) shows a
//! frame on an SSD1306 OLED over I2C ([`oled`]), the Linux framebuffer ([`framebuffer`]),
//! a terminal, or nowhere, chosen by [`select`]; [`task`] keeps the current screen on it.
//! The button's edges become debounced short and long presses ([`button`]); the LED
//! blinks patterns given as data ([`led`]). The Pi's bus and pins are reached through
//! rppal ([`pi`], Linux only); everything else compiles and runs anywhere, so tests drive
//! mock buses and an injected clock. This module shows and reports; it never decides what
//! a press means (pairing and approvals do) and never shows a secret past its screen's
//! expiry.

pub mod alerts;
pub mod button;
pub mod display;
pub mod error;
pub mod frame;
pub mod framebuffer;
pub mod led;
pub mod oled;
#[cfg(target_os = "linux")]
pub mod pi;
pub mod png;
pub mod qr;
pub mod screens;
pub mod select;
pub mod task;

#[cfg(test)]
mod tests;

pub use alerts::Alerts;
pub use button::ButtonEvent;
pub use display::{Button, Display, Led};
pub use error::HardwareError;
pub use frame::Frame;
pub use led::LedPattern;
pub use qr::{QrError, QrMatrix};
pub use screens::{Screen, render};

/// Devices handed to the gateway instead of probed for: a simulated board in tests, or a
/// caller that opened them itself.
#[derive(Debug)]
pub struct Devices {
    pub display: Box<dyn Display>,
    pub button: Box<dyn Button>,
    pub led: Box<dyn Led>,
}
