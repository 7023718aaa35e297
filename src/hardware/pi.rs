//! The Raspberry Pi's buses and pins through rppal (Linux only): the I2C bus for the
//! SSD1306, the button's GPIO interrupt and the LED's GPIO output. Off a Pi each opener
//! returns an error that says what was missing, and `select.rs` falls back. Nothing here
//! interprets an edge or a frame.

use std::time::Instant;

use rppal::gpio::{Gpio, InputPin, Level, OutputPin, Trigger};
use rppal::i2c::I2c;
use tokio::sync::mpsc::UnboundedSender;

use crate::hardware::display::{Button, Edge, Led};
use crate::hardware::error::HardwareError;
use crate::hardware::oled::Oled;

/// Opens I2C bus `bus` and initialises the SSD1306 at `address` on it.
pub fn open_oled(bus: u8, address: u8) -> Result<Oled<I2c>, HardwareError> {
    let i2c = I2c::with_bus(bus).map_err(|e| HardwareError::I2cBus {
        bus,
        reason: e.to_string(),
    })?;
    Oled::open(i2c, address, format!("/dev/i2c-{bus}"))
}

fn gpio_error(pin: u8, role: &'static str) -> impl Fn(rppal::gpio::Error) -> HardwareError {
    move |e| HardwareError::Gpio {
        pin,
        role,
        reason: e.to_string(),
    }
}

/// A push button from a GPIO to ground, read with the internal pull-up: low is pressed.
#[derive(Debug)]
pub struct GpioButton {
    pin: InputPin,
    number: u8,
}

impl GpioButton {
    pub fn open(number: u8) -> Result<GpioButton, HardwareError> {
        let pin = Gpio::new()
            .and_then(|gpio| gpio.get(number))
            .map_err(gpio_error(number, "button"))?
            .into_input_pullup();
        Ok(GpioButton { pin, number })
    }
}

impl Button for GpioButton {
    fn describe(&self) -> String {
        format!("button on GPIO {}", self.number)
    }

    fn listen(&mut self, edges: UnboundedSender<Edge>) -> Result<(), HardwareError> {
        // Debouncing is ours (button.rs), so every edge is passed on as it comes.
        self.pin
            .set_async_interrupt(Trigger::Both, None, move |event| {
                let pressed = event.trigger == Trigger::FallingEdge;
                let _ = edges.send(Edge {
                    pressed,
                    at: Instant::now(),
                });
            })
            .map_err(gpio_error(self.number, "button"))
    }
}

/// An LED from a GPIO through a resistor to ground: high is lit.
#[derive(Debug)]
pub struct GpioLed {
    pin: OutputPin,
    number: u8,
}

impl GpioLed {
    pub fn open(number: u8) -> Result<GpioLed, HardwareError> {
        let pin = Gpio::new()
            .and_then(|gpio| gpio.get(number))
            .map_err(gpio_error(number, "LED"))?
            .into_output_low();
        Ok(GpioLed { pin, number })
    }
}

impl Led for GpioLed {
    fn describe(&self) -> String {
        format!("LED on GPIO {}", self.number)
    }

    fn set(&mut self, on: bool) -> Result<(), HardwareError> {
        self.pin.write(if on { Level::High } else { Level::Low });
        Ok(())
    }
}
