//! The frame as a PNG, for `--png PATH` and for looking at screens off the device: one bit
//! per pixel, each display pixel a 4×4 block, lit pixels white, exactly as the OLED shows
//! it. It never decides what a frame shows.

use std::path::Path;

use crate::fsutil::{IoError, write_private_file};
use crate::hardware::error::HardwareError;
use crate::hardware::frame::{Frame, HEIGHT, WIDTH};

/// Image pixels per display pixel, each way.
pub const PNG_SCALE: u32 = 4;

/// The PNG file's bytes for `frame`.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, HardwareError> {
    let width = WIDTH * PNG_SCALE;
    let height = HEIGHT * PNG_SCALE;
    let row_bytes = width.div_ceil(8) as usize;
    let mut data = Vec::with_capacity(row_bytes * height as usize);
    for y in 0..height {
        let mut row = vec![0u8; row_bytes];
        for x in 0..width {
            if frame.pixel(x / PNG_SCALE, y / PNG_SCALE)
                && let Some(byte) = row.get_mut((x / 8) as usize)
            {
                *byte |= 0x80 >> (x % 8);
            }
        }
        data.extend_from_slice(&row);
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let png_error = |err: png::EncodingError| HardwareError::Png(err.to_string());
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&data).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// Writes `frame` as a PNG to `path`, mode 0600 (a pairing QR holds a secret), replacing
/// any file there only once the whole picture is written.
pub fn write(frame: &Frame, path: &Path) -> Result<(), HardwareError> {
    let bytes = encode(frame)?;
    write_private_file(path, &bytes)
        .map_err(|source| HardwareError::Io(IoError::new("write PNG", path, source)))
}
