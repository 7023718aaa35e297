use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::i2c::{Mock, Transaction};
use time::macros::datetime;

use super::decode_frame;
use crate::hardware::display::{Display, TerminalDisplay, half_blocks};
use crate::hardware::frame::{Frame, HEIGHT, WIDTH};
use crate::hardware::framebuffer::{Framebuffer, Geometry};
use crate::hardware::oled::Oled;
use crate::hardware::screens::{Screen, render};
use crate::secret::Secret;

const PAYLOAD: &str = "HTTPS://AISOPOD.LOCAL/P#ABCDEFGHIJKLMNOP";

fn pairing_frame() -> Frame {
    let now = datetime!(2026-01-01 12:00 UTC);
    render(
        &Screen::Pairing {
            payload: Secret::new(PAYLOAD),
            code: "K7Q2".into(),
            expires_at: now + time::Duration::minutes(2),
        },
        now,
    )
    .unwrap()
}

/// The SSD1306 set-up for a 128×64 panel in horizontal addressing, as the datasheet
/// orders it: each command one I2C write behind the control byte 0x00.
fn init(address: u8) -> Vec<Transaction> {
    let commands: &[&[u8]] = &[
        &[0xAE],       // display off
        &[0xD5, 0x80], // clock
        &[0xA8, 0x3F], // 64 rows
        &[0xD3, 0x00], // no offset
        &[0x40],       // start line 0
        &[0x8D, 0x14], // charge pump on
        &[0x20, 0x00], // horizontal addressing
        &[0xDA, 0x12], // COM pins for 128x64
        &[0xA1],       // segment remap
        &[0xC8],       // COM scan reversed
        &[0xD9, 0x21], // pre-charge
        &[0x81, 0x5F], // contrast
        &[0xDB, 0x40], // VCOMH auto
        &[0xA4],       // show RAM
        &[0xA6],       // not inverted
        &[0x2E],       // no scrolling
        &[0xAF],       // display on
    ];
    commands.iter().map(|c| command(address, c)).collect()
}

fn command(address: u8, bytes: &[u8]) -> Transaction {
    let mut write = vec![0x00];
    write.extend_from_slice(bytes);
    Transaction::write(address, write)
}

/// A whole frame: the draw area, then the 1 KiB of pages in 16-byte writes behind the
/// data control byte 0x40.
fn draw(address: u8, frame: &Frame) -> Vec<Transaction> {
    let mut out = vec![
        command(address, &[0x21, 0, 127]),
        command(address, &[0x22, 0, 7]),
    ];
    for chunk in frame.pages().chunks(16) {
        let mut write = vec![0x40];
        write.extend_from_slice(chunk);
        out.push(Transaction::write(address, write));
    }
    out
}

#[test]
fn the_oled_gets_the_set_up_and_the_frame_byte_for_byte_and_the_pages_decode_back() {
    let frame = pairing_frame();
    let mut expected = init(0x3D);
    expected.extend(draw(0x3D, &frame));
    let bus = Mock::new(&expected);
    let mut oled = Oled::open(bus, 0x3D, "/dev/i2c-1").unwrap();
    assert_eq!(oled.describe(), "ssd1306 on /dev/i2c-1 at 0x3d");
    oled.show(&frame).unwrap();
    oled.release().done();
    // The bytes the mock accepted are exactly this frame's pages, which decode back.
    assert_eq!(decode_frame(&Frame::from_pages(*frame.pages())), [PAYLOAD]);
}

#[test]
fn no_answer_at_the_address_is_a_clear_error_naming_it() {
    let bus = Mock::new(&[Transaction::write(0x3C, vec![0x00, 0xAE])
        .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))]);
    let err = Oled::open(bus.clone(), 0x3C, "/dev/i2c-1").unwrap_err();
    assert!(err.to_string().contains("0x3c"), "{err}");
    let mut bus = bus;
    bus.done();
}

#[test]
fn an_unplugged_oled_fails_the_show_and_is_set_up_again_once_it_answers() {
    let frame = pairing_frame();
    let mut expected = init(0x3C);
    // Unplugged: the first write of the draw area is not acknowledged.
    expected.push(
        command(0x3C, &[0x21, 0, 127])
            .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)),
    );
    // Plugged back: the controller lost its settings, so they are sent again first.
    expected.extend(init(0x3C));
    expected.extend(draw(0x3C, &frame));
    let bus = Mock::new(&expected);
    let mut oled = Oled::open(bus, 0x3C, "/dev/i2c-1").unwrap();
    let err = oled.show(&frame).unwrap_err();
    assert!(err.to_string().contains("SSD1306"), "{err}");
    oled.show(&frame).unwrap();
    oled.release().done();
}

#[test]
fn the_terminal_draws_half_blocks_that_read_back_to_the_same_frame() {
    let frame = pairing_frame();
    let mut terminal = TerminalDisplay::new(Vec::new());
    terminal.show(&frame).unwrap();
    // The same frame again is not drawn twice.
    terminal.show(&frame).unwrap();
    let text = String::from_utf8(terminal.into_inner()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 32 + 2, "two rules around 32 lines");
    let mut back = Frame::new();
    for (row, line) in lines[1..33].iter().enumerate() {
        assert_eq!(line.chars().count(), WIDTH as usize);
        for (x, c) in line.chars().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected {other:?}"),
            };
            back.set(x as u32, row as u32 * 2, top);
            back.set(x as u32, row as u32 * 2 + 1, bottom);
        }
    }
    assert_eq!(back, frame);
    assert_eq!(decode_frame(&back), [PAYLOAD]);
    assert_eq!(half_blocks(&Frame::new()).trim(), "");
}

fn fake_framebuffer(
    size: &str,
    bpp: &str,
    stride: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sysfs = dir.path().join("fb0");
    std::fs::create_dir(&sysfs).unwrap();
    std::fs::write(sysfs.join("virtual_size"), format!("{size}\n")).unwrap();
    std::fs::write(sysfs.join("bits_per_pixel"), format!("{bpp}\n")).unwrap();
    std::fs::write(sysfs.join("stride"), format!("{stride}\n")).unwrap();
    (dir, sysfs)
}

#[test]
fn the_framebuffer_draws_the_frame_scaled_and_centred() {
    // 640x480 at 16 bits: scale 5 (640/128), 160 rows of margin above and below.
    let (dir, sysfs) = fake_framebuffer("640,480", "16", "1280");
    let device = dir.path().join("fb");
    std::fs::write(&device, vec![0x11u8; 1280 * 480]).unwrap();
    let mut fb = Framebuffer::open(&device, &sysfs).unwrap();
    assert_eq!(fb.geometry().scale(), 5);
    assert_eq!(fb.geometry().origin(), (0, 80));
    let frame = pairing_frame();
    fb.show(&frame).unwrap();
    let bytes = std::fs::read(&device).unwrap();
    // Above and below the frame nothing was touched.
    assert!(bytes[..1280 * 80].iter().all(|&b| b == 0x11));
    assert!(bytes[1280 * 400..].iter().all(|&b| b == 0x11));
    // Sampling the centre of each 5x5 block gives the frame back.
    let mut back = Frame::new();
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let offset = (80 + y as usize * 5 + 2) * 1280 + (x as usize * 5 + 2) * 2;
            back.set(x, y, bytes[offset] == 0xFF);
        }
    }
    assert_eq!(back, frame);
}

#[test]
fn a_framebuffer_of_an_unusable_shape_is_refused_with_the_reason() {
    for (size, bpp, stride, reason) in [
        ("100,50", "32", "400", "smaller than"),
        ("640,480", "8", "640", "bits per pixel"),
        ("640x480", "32", "2560", "WIDTH,HEIGHT"),
        ("640,480", "32", "100", "stride"),
    ] {
        let (_dir, sysfs) = fake_framebuffer(size, bpp, stride);
        let err = Geometry::read(&sysfs).unwrap_err();
        assert!(
            err.to_string().contains(reason),
            "{size} {bpp} {stride}: {err}"
        );
    }
    let err = Geometry::read(std::path::Path::new("/nonexistent/fb9")).unwrap_err();
    assert!(err.to_string().contains("virtual_size"), "{err}");
}
