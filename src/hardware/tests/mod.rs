//! Tests of the display's pictures: screens decoded back through a QR reader, frames
//! through the PNG writer, and the drivers over mock buses.

mod devices;
mod input;
mod screens;
mod task;

use crate::hardware::frame::{Frame, HEIGHT, WIDTH};

/// Every QR code a reader finds in a greyscale picture, decoded.
fn decode_picture(
    width: usize,
    height: usize,
    luma: impl FnMut(usize, usize) -> u8,
) -> Vec<String> {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, luma);
    image
        .detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

/// The QR codes in a frame as the panel shows it: lit pixels white.
fn decode_frame(frame: &Frame) -> Vec<String> {
    decode_picture(WIDTH as usize, HEIGHT as usize, |x, y| {
        if frame.pixel(x as u32, y as u32) {
            255
        } else {
            0
        }
    })
}

/// The QR codes in a PNG file's picture.
fn decode_png(bytes: &[u8]) -> Vec<String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::One);
    let row = info.line_size;
    decode_picture(info.width as usize, info.height as usize, |x, y| {
        let byte = buffer[y * row + x / 8];
        if byte & (0x80 >> (x % 8)) != 0 {
            255
        } else {
            0
        }
    })
}
