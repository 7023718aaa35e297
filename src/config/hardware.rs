//! `[hardware]`: which display to drive and where the display, button and LED are wired.
//! The file-facing table and its validated form; pins and addresses are checked here, at
//! load, each problem naming its key. What a pin does is `hardware`'s business, not this
//! module's.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::issue::ConfigIssue;
use super::units::Seconds;

/// Which display to show screens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DisplayKind {
    /// The first that answers of ssd1306, framebuffer and terminal; none otherwise.
    Auto,
    /// A 128×64 SSD1306 OLED on the I2C bus.
    Ssd1306,
    /// The Linux framebuffer (HDMI).
    Framebuffer,
    /// Unicode half blocks on the console.
    Terminal,
    /// No display.
    None,
}

/// The validated `[hardware]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct HardwareConfig {
    pub display: DisplayKind,
    /// The I2C bus number (`/dev/i2c-N`); 1 on the 40-pin header.
    pub i2c_bus: u8,
    /// The SSD1306's 7-bit address: 0x3C, or 0x3D with its address jumper moved.
    pub i2c_address: u8,
    /// The framebuffer device.
    pub framebuffer: PathBuf,
    /// BCM GPIO number of the push button (to ground; the internal pull-up is used).
    pub button_pin: u8,
    /// BCM GPIO number of the LED (through a resistor to ground).
    pub led_pin: u8,
    /// Edges closer together than this are one press (contact bounce).
    pub debounce: Duration,
    /// A press held this long is a long press (start pairing).
    pub long_press: Duration,
    /// A short press also approves a pending tool call (physical presence).
    pub approve_with_button: bool,
}

impl Default for HardwareConfig {
    fn default() -> Self {
        validate_hardware(RawHardware::default(), &mut Vec::new())
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawHardware {
    display: DisplayKind,
    i2c_bus: u64,
    i2c_address: u64,
    framebuffer: PathBuf,
    button_pin: u64,
    led_pin: u64,
    debounce: Seconds,
    long_press: Seconds,
    approve_with_button: bool,
}

impl Default for RawHardware {
    fn default() -> Self {
        Self {
            display: DisplayKind::Auto,
            i2c_bus: 1,
            i2c_address: 0x3C,
            framebuffer: PathBuf::from("/dev/fb0"),
            button_pin: 17,
            led_pin: 27,
            debounce: Seconds(Duration::from_millis(30)),
            long_press: Seconds(Duration::from_secs(3)),
            approve_with_button: false,
        }
    }
}

/// BCM GPIO numbers of the 40-pin header's I2C1 pins (SDA, SCL).
pub const I2C_PINS: [u8; 2] = [2, 3];

/// Checks `raw`, recording each problem with its key; the result holds the defaults in
/// place of invalid values.
pub(super) fn validate_hardware(raw: RawHardware, issues: &mut Vec<ConfigIssue>) -> HardwareConfig {
    let defaults = RawHardware::default();
    let mut push = |key: &str, message: String| {
        issues.push(ConfigIssue {
            key: format!("hardware.{key}"),
            message,
        })
    };
    let i2c_bus = match u8::try_from(raw.i2c_bus) {
        Ok(bus) if bus <= 22 => bus,
        _ => {
            push(
                "i2c_bus",
                format!(
                    "{} is not an I2C bus number (0 to 22; 1 on the Pi's header)",
                    raw.i2c_bus
                ),
            );
            defaults.i2c_bus as u8
        }
    };
    let i2c_address = match raw.i2c_address {
        0x3C | 0x3D => raw.i2c_address as u8,
        other => {
            push(
                "i2c_address",
                format!("{other:#04x} is not an SSD1306 address: use 0x3C or 0x3D"),
            );
            defaults.i2c_address as u8
        }
    };
    let mut pin = |key: &str, value: u64, default: u64| -> u8 {
        match u8::try_from(value) {
            Ok(p) if (2..=27).contains(&p) && !I2C_PINS.contains(&p) => p,
            _ => {
                push(
                    key,
                    format!(
                        "GPIO {value} cannot be used: choose a BCM GPIO number from 4 to 27 \
                     (2 and 3 are the display's I2C SDA and SCL)"
                    ),
                );
                default as u8
            }
        }
    };
    let button_pin = pin("button_pin", raw.button_pin, defaults.button_pin);
    let led_pin = pin("led_pin", raw.led_pin, defaults.led_pin);
    if button_pin == led_pin && raw.button_pin == raw.led_pin {
        push(
            "led_pin",
            format!("GPIO {led_pin} is already the button_pin: the LED needs a pin of its own"),
        );
    }
    let debounce = raw.debounce.0;
    if debounce < Duration::from_millis(1) || debounce > Duration::from_millis(500) {
        push(
            "debounce",
            format!(
                "{} is out of range: must be between 1ms and 500ms",
                humantime::format_duration(debounce)
            ),
        );
    }
    let long_press = raw.long_press.0;
    if long_press < Duration::from_millis(500) || long_press > Duration::from_secs(30) {
        push(
            "long_press",
            format!(
                "{} is out of range: must be between 500ms and 30s",
                humantime::format_duration(long_press)
            ),
        );
    }
    if long_press <= debounce {
        push("long_press", "must be longer than hardware.debounce".into());
    }
    HardwareConfig {
        display: raw.display,
        i2c_bus,
        i2c_address,
        framebuffer: raw.framebuffer,
        button_pin,
        led_pin,
        debounce: debounce.clamp(Duration::from_millis(1), Duration::from_millis(500)),
        long_press: long_press.clamp(Duration::from_millis(500), Duration::from_secs(30)),
        approve_with_button: raw.approve_with_button,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (HardwareConfig, Vec<ConfigIssue>) {
        let raw: RawHardware = toml::from_str(text).unwrap();
        let mut issues = Vec::new();
        let config = validate_hardware(raw, &mut issues);
        (config, issues)
    }

    fn keys(text: &str) -> Vec<String> {
        check(text).1.into_iter().map(|i| i.key).collect()
    }

    #[test]
    fn defaults_are_the_documented_wiring() {
        let (config, issues) = check("");
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(config.display, DisplayKind::Auto);
        assert_eq!((config.i2c_bus, config.i2c_address), (1, 0x3C));
        assert_eq!((config.button_pin, config.led_pin), (17, 27));
        assert_eq!(config.long_press, Duration::from_secs(3));
        assert_eq!(config, HardwareConfig::default());
    }

    #[test]
    fn a_valid_table_is_taken_as_written() {
        let (config, issues) = check(
            "display = \"ssd1306\"\ni2c_address = 0x3D\nbutton_pin = 5\nled_pin = 6\n\
             debounce = \"50ms\"\nlong_press = \"2s\"\napprove_with_button = true",
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(config.display, DisplayKind::Ssd1306);
        assert_eq!(config.i2c_address, 0x3D);
        assert_eq!((config.button_pin, config.led_pin), (5, 6));
        assert_eq!(config.debounce, Duration::from_millis(50));
        assert!(config.approve_with_button);
    }

    #[test]
    fn each_bad_value_is_refused_naming_its_key() {
        assert_eq!(keys("i2c_address = 0x27"), ["hardware.i2c_address"]);
        assert_eq!(keys("i2c_bus = 300"), ["hardware.i2c_bus"]);
        assert_eq!(keys("button_pin = 2"), ["hardware.button_pin"]);
        assert_eq!(keys("led_pin = 3"), ["hardware.led_pin"]);
        assert_eq!(keys("led_pin = 40"), ["hardware.led_pin"]);
        assert_eq!(keys("button_pin = 9\nled_pin = 9"), ["hardware.led_pin"]);
        assert_eq!(keys("debounce = \"2s\""), ["hardware.debounce"]);
        assert_eq!(keys("long_press = \"100ms\""), ["hardware.long_press"]);
        assert_eq!(
            keys("debounce = \"500ms\"\nlong_press = \"500ms\""),
            ["hardware.long_press"]
        );
        let (_, issues) = check("i2c_address = 0x27");
        assert!(issues[0].message.contains("0x3C or 0x3D"), "{issues:?}");
        assert!(toml::from_str::<RawHardware>("display = \"hdmi\"").is_err());
        assert!(toml::from_str::<RawHardware>("pins = 3").is_err());
    }
}
