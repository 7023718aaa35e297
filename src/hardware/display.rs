//! The `Display`, `Button` and `Led` traits, and the devices that need no bus: a terminal
//! drawing the frame in Unicode half blocks, and the null devices that accept everything
//! and show nothing. The Pi's devices live in `pi.rs`, the framebuffer in
//! `framebuffer.rs`, the SSD1306 in `oled.rs`; choosing among them is `select.rs`'s job.

use std::io::Write;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use crate::hardware::error::HardwareError;
use crate::hardware::frame::{Frame, HEIGHT, WIDTH};

/// Something that shows a [`Frame`].
pub trait Display: Send + std::fmt::Debug {
    /// What it is, for logs and `hardware test` (`ssd1306 on /dev/i2c-1 at 0x3c`).
    fn describe(&self) -> String;
    /// Shows `frame` in place of what was shown.
    fn show(&mut self, frame: &Frame) -> Result<(), HardwareError>;
}

/// One raw change of the button's contact, as the interrupt saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Whether the contact is now closed.
    pub pressed: bool,
    pub at: Instant,
}

/// Something that reports the button's raw edges.
pub trait Button: Send + std::fmt::Debug {
    fn describe(&self) -> String;
    /// Starts sending every edge to `edges` (from an interrupt, until dropped).
    fn listen(&mut self, edges: UnboundedSender<Edge>) -> Result<(), HardwareError>;
}

/// Something that lights.
pub trait Led: Send + std::fmt::Debug {
    fn describe(&self) -> String;
    fn set(&mut self, on: bool) -> Result<(), HardwareError>;
}

/// Shows nothing; the fallback when no display answers.
#[derive(Debug, Default)]
pub struct NullDisplay;

impl Display for NullDisplay {
    fn describe(&self) -> String {
        "no display".into()
    }

    fn show(&mut self, _: &Frame) -> Result<(), HardwareError> {
        Ok(())
    }
}

/// Never pressed.
#[derive(Debug, Default)]
pub struct NullButton;

impl Button for NullButton {
    fn describe(&self) -> String {
        "no button".into()
    }

    fn listen(&mut self, _: UnboundedSender<Edge>) -> Result<(), HardwareError> {
        Ok(())
    }
}

/// Lights nothing.
#[derive(Debug, Default)]
pub struct NullLed;

impl Led for NullLed {
    fn describe(&self) -> String {
        "no LED".into()
    }

    fn set(&mut self, _: bool) -> Result<(), HardwareError> {
        Ok(())
    }
}

/// Draws frames on a terminal: each character cell holds two pixels, one above the other
/// (`▀`, `▄`, `█` or a space), so the 128×64 frame takes 128 columns and 32 lines. A frame
/// equal to the last one drawn is not drawn again.
pub struct TerminalDisplay<W: Write + Send> {
    out: W,
    last: Option<Frame>,
}

impl<W: Write + Send> std::fmt::Debug for TerminalDisplay<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TerminalDisplay")
    }
}

impl<W: Write + Send> TerminalDisplay<W> {
    pub fn new(out: W) -> Self {
        TerminalDisplay { out, last: None }
    }

    /// The writer, for tests that read back what was drawn.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The frame as 32 lines of half blocks, each ending in a newline.
pub fn half_blocks(frame: &Frame) -> String {
    let mut text = String::with_capacity((WIDTH as usize * 3 + 1) * (HEIGHT as usize / 2));
    for row in (0..HEIGHT).step_by(2) {
        for x in 0..WIDTH {
            text.push(match (frame.pixel(x, row), frame.pixel(x, row + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        text.push('\n');
    }
    text
}

impl<W: Write + Send> Display for TerminalDisplay<W> {
    fn describe(&self) -> String {
        "terminal (half blocks)".into()
    }

    fn show(&mut self, frame: &Frame) -> Result<(), HardwareError> {
        if self.last.as_ref() == Some(frame) {
            return Ok(());
        }
        let rule = "─".repeat(WIDTH as usize);
        let text = format!("{rule}\n{}{rule}\n", half_blocks(frame));
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(HardwareError::Terminal)?;
        self.last = Some(frame.clone());
        Ok(())
    }
}
