//! Picks the devices `[hardware]` asks for. `display = "auto"` tries an SSD1306 on the
//! configured bus and address, then the framebuffer, then the terminal (only when stdout
//! is one), and settles for no display; a named display that cannot be opened is an error
//! for the caller to report, and the gateway runs on without it. Off Linux only the
//! terminal and the null devices exist.

use std::io::IsTerminal;

use crate::config::hardware::{DisplayKind, HardwareConfig};
use crate::hardware::display::{
    Button, Display, Led, NullButton, NullDisplay, NullLed, TerminalDisplay,
};
use crate::hardware::error::HardwareError;

/// The display `config` asks for, and for `auto` the reasons each candidate before it was
/// passed over (for the log and `hardware test`).
pub fn open_display(
    config: &HardwareConfig,
) -> (Result<Box<dyn Display>, HardwareError>, Vec<String>) {
    let mut skipped = Vec::new();
    match config.display {
        DisplayKind::None => (Ok(Box::new(NullDisplay)), skipped),
        DisplayKind::Ssd1306 => (oled(config), skipped),
        DisplayKind::Framebuffer => (framebuffer(config), skipped),
        DisplayKind::Terminal => (
            Ok(Box::new(TerminalDisplay::new(std::io::stdout()))),
            skipped,
        ),
        DisplayKind::Auto => {
            for candidate in [oled, framebuffer, terminal] {
                match candidate(config) {
                    Ok(display) => return (Ok(display), skipped),
                    Err(err) => skipped.push(err.to_string()),
                }
            }
            (Ok(Box::new(NullDisplay)), skipped)
        }
    }
}

fn terminal(_: &HardwareConfig) -> Result<Box<dyn Display>, HardwareError> {
    if std::io::stdout().is_terminal() {
        Ok(Box::new(TerminalDisplay::new(std::io::stdout())))
    } else {
        Err(HardwareError::Unavailable("a terminal on stdout"))
    }
}

#[cfg(target_os = "linux")]
fn oled(config: &HardwareConfig) -> Result<Box<dyn Display>, HardwareError> {
    let display = crate::hardware::pi::open_oled(config.i2c_bus, config.i2c_address)?;
    Ok(Box::new(display))
}

#[cfg(not(target_os = "linux"))]
fn oled(_: &HardwareConfig) -> Result<Box<dyn Display>, HardwareError> {
    Err(HardwareError::Unavailable("I2C (Linux only)"))
}

fn framebuffer(config: &HardwareConfig) -> Result<Box<dyn Display>, HardwareError> {
    use crate::hardware::framebuffer::Framebuffer;
    let sysfs = Framebuffer::sysfs_of(&config.framebuffer);
    Ok(Box::new(Framebuffer::open(&config.framebuffer, &sysfs)?))
}

/// The button on `config.button_pin`, or none off a Pi (with why).
#[cfg(target_os = "linux")]
pub fn open_button(config: &HardwareConfig) -> (Box<dyn Button>, Option<HardwareError>) {
    match crate::hardware::pi::GpioButton::open(config.button_pin) {
        Ok(button) => (Box::new(button), None),
        Err(err) => (Box::new(NullButton), Some(err)),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn open_button(_: &HardwareConfig) -> (Box<dyn Button>, Option<HardwareError>) {
    let missing = HardwareError::Unavailable("GPIO (Linux only)");
    (Box::new(NullButton), Some(missing))
}

/// The LED on `config.led_pin`, or none off a Pi (with why).
#[cfg(target_os = "linux")]
pub fn open_led(config: &HardwareConfig) -> (Box<dyn Led>, Option<HardwareError>) {
    match crate::hardware::pi::GpioLed::open(config.led_pin) {
        Ok(led) => (Box::new(led), None),
        Err(err) => (Box::new(NullLed), Some(err)),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn open_led(_: &HardwareConfig) -> (Box<dyn Led>, Option<HardwareError>) {
    let missing = HardwareError::Unavailable("GPIO (Linux only)");
    (Box::new(NullLed), Some(missing))
}
