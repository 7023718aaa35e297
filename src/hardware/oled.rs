//! The 128×64 SSD1306 OLED on any embedded-hal I2C bus: rppal's on the Pi, a mock in
//! tests. The frame is already in the controller's page layout, so a show is one draw
//! area and 1 KiB of data. A failed transfer (an unplugged module, a glitch on the bus)
//! makes the next show initialise the controller again, so a display plugged back in
//! comes back without a restart. It never decides what to show.

use display_interface_i2c::I2CInterface;
use embedded_hal::i2c::I2c;
use ssd1306::command::AddrMode;
use ssd1306::mode::BasicMode;
use ssd1306::prelude::{DisplayRotation, DisplaySize128x64};
use ssd1306::{I2CDisplayInterface, Ssd1306};

use crate::hardware::display::Display;
use crate::hardware::error::HardwareError;
use crate::hardware::frame::Frame;

/// An SSD1306 on an I2C bus.
pub struct Oled<I: I2c> {
    driver: Ssd1306<I2CInterface<I>, DisplaySize128x64, BasicMode>,
    address: u8,
    bus: String,
    ready: bool,
}

impl<I: I2c> std::fmt::Debug for Oled<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oled")
            .field("bus", &self.bus)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl<I: I2c + Send> Oled<I> {
    /// Initialises the controller at `address` on `i2c`; an error means nothing answered
    /// there (or it refused the set-up), which is how `auto` probes for it.
    pub fn open(i2c: I, address: u8, bus: impl Into<String>) -> Result<Self, HardwareError> {
        let interface = I2CDisplayInterface::new_custom_address(i2c, address);
        let mut oled = Oled {
            driver: Ssd1306::new(interface, DisplaySize128x64, DisplayRotation::Rotate0),
            address,
            bus: bus.into(),
            ready: false,
        };
        oled.init()?;
        Ok(oled)
    }

    fn init(&mut self) -> Result<(), HardwareError> {
        self.driver
            .init_with_addr_mode(AddrMode::Horizontal)
            .map_err(|e| self.failed(e))?;
        self.ready = true;
        Ok(())
    }

    fn failed(&self, err: display_interface::DisplayError) -> HardwareError {
        HardwareError::Ssd1306 {
            address: self.address,
            reason: format!("{err:?}"),
        }
    }

    /// The bus, for tests that check what was sent.
    pub fn release(self) -> I {
        self.driver.release().release()
    }
}

impl<I: I2c + Send> Display for Oled<I> {
    fn describe(&self) -> String {
        format!("ssd1306 on {} at {:#04x}", self.bus, self.address)
    }

    fn show(&mut self, frame: &Frame) -> Result<(), HardwareError> {
        if !self.ready {
            self.init()?;
        }
        let sent = self
            .driver
            .set_draw_area((0, 0), (128, 64))
            .and_then(|()| self.driver.draw(frame.pages()));
        if let Err(err) = sent {
            self.ready = false;
            return Err(self.failed(err));
        }
        Ok(())
    }
}
