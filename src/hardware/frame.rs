//! The 128×64 one-bit frame every screen is drawn into: the exact picture the OLED shows.
//!
//! Stored in the SSD1306's own page layout (eight rows per byte, least significant bit on
//! top) so the driver sends it unchanged, and implementing embedded-graphics'
//! `DrawTarget` so text and shapes draw into it. It never talks to a device.

use std::convert::Infallible;
use std::fmt;

use embedded_graphics::Pixel;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Size};

/// Pixels across.
pub const WIDTH: u32 = 128;
/// Pixels down.
pub const HEIGHT: u32 = 64;
/// Bytes of one frame in page layout.
pub const BYTES: usize = (WIDTH * HEIGHT / 8) as usize;

/// One picture of the display; `true` is a lit pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pages: [u8; BYTES],
}

impl Frame {
    /// An all-dark frame.
    pub fn new() -> Frame {
        Frame { pages: [0; BYTES] }
    }

    /// A frame from bytes in the SSD1306 page layout, as [`Frame::pages`] gives them.
    pub fn from_pages(pages: [u8; BYTES]) -> Frame {
        Frame { pages }
    }

    /// The bytes in the SSD1306 page layout: byte `page * 128 + x` holds rows
    /// `page * 8 ..= page * 8 + 7` of column `x`, the top row in bit 0.
    pub fn pages(&self) -> &[u8; BYTES] {
        &self.pages
    }

    /// Whether the pixel at (`x`, `y`) is lit; outside the frame is dark.
    pub fn pixel(&self, x: u32, y: u32) -> bool {
        match Self::locate(x, y) {
            Some((index, bit)) => self.pages.get(index).is_some_and(|b| b & bit != 0),
            None => false,
        }
    }

    /// Lights or darkens the pixel at (`x`, `y`); outside the frame nothing happens.
    pub fn set(&mut self, x: u32, y: u32, lit: bool) {
        if let Some((index, bit)) = Self::locate(x, y)
            && let Some(byte) = self.pages.get_mut(index)
        {
            if lit {
                *byte |= bit;
            } else {
                *byte &= !bit;
            }
        }
    }

    /// Lights or darkens a rectangle, clipped to the frame.
    pub fn fill_rect(&mut self, x: u32, y: u32, width: u32, height: u32, lit: bool) {
        for row in y..y.saturating_add(height).min(HEIGHT) {
            for column in x..x.saturating_add(width).min(WIDTH) {
                self.set(column, row, lit);
            }
        }
    }

    /// How many pixels are lit.
    pub fn lit_count(&self) -> u32 {
        self.pages.iter().map(|b| b.count_ones()).sum()
    }

    fn locate(x: u32, y: u32) -> Option<(usize, u8)> {
        if x >= WIDTH || y >= HEIGHT {
            return None;
        }
        Some(((y / 8 * WIDTH + x) as usize, 1 << (y % 8)))
    }
}

impl Default for Frame {
    fn default() -> Self {
        Frame::new()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({}x{}, {} lit)", WIDTH, HEIGHT, self.lit_count())
    }
}

impl OriginDimensions for Frame {
    fn size(&self) -> Size {
        Size::new(WIDTH, HEIGHT)
    }
}

impl DrawTarget for Frame {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, color) in pixels {
            if let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) {
                self.set(x, y, color.is_on());
            }
        }
        Ok(())
    }
}
