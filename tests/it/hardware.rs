//! The display, button and LED from outside: `aisopod hardware test` off a Pi, the
//! `[hardware]` table's checks, and a gateway whose display cannot be opened.

use std::os::unix::fs::PermissionsExt;

use crate::support::{Setup, stdout};

/// The QR codes a reader finds in a PNG of the display.
pub(crate) fn qr_codes_in_png(bytes: &[u8]) -> Vec<String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let row = info.line_size;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(
        info.width as usize,
        info.height as usize,
        |x, y| {
            if buffer[y * row + x / 8] & (0x80 >> (x % 8)) != 0 {
                255
            } else {
                0
            }
        },
    );
    image
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

#[test]
fn hardware_test_off_a_pi_says_what_is_missing_and_writes_a_readable_qr() {
    let setup = Setup::new("[hardware]\ndisplay = \"none\"\n");
    let png = setup.dir.path().join("screen.png");
    let out = setup.cli(&[
        "hardware",
        "test",
        "--timeout",
        "1s",
        "--png",
        png.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("LED:     not found (GPIO 27 (LED)"), "{text}");
    assert!(
        text.contains("button:  not found (GPIO 17 (button)"),
        "{text}"
    );
    assert!(text.contains("display: no display"), "{text}");
    assert!(text.contains("some hardware is missing"), "{text}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(
        qr_codes_in_png(&bytes),
        ["HTTPS://AISOPOD.LOCAL/HARDWARE-TEST"]
    );
    let mode = std::fs::metadata(&png).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn wrong_hardware_values_are_refused_each_naming_its_key() {
    let setup = Setup::new("[hardware]\ni2c_address = 0x27\nbutton_pin = 2\ndisplay = \"oled\"\n");
    let out = setup.cli(&["gateway", "validate-config"]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert!(report.contains("hardware.display"), "{report}");
    // A table with an unknown display name stops at the schema; the values are
    // checked once it reads.
    let setup = Setup::new("[hardware]\ni2c_address = 0x27\nbutton_pin = 2\n");
    let out = setup.cli(&["gateway", "validate-config"]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert!(
        report.contains("  hardware.i2c_address: 0x27 is not an SSD1306 address"),
        "{report}"
    );
    assert!(
        report.contains("  hardware.button_pin: GPIO 2 cannot be used"),
        "{report}"
    );
}

#[test]
fn a_gateway_whose_display_cannot_be_opened_serves_and_keeps_its_display_task() {
    let setup = Setup::new("[hardware]\ndisplay = \"ssd1306\"\ni2c_bus = 21\n");
    let gateway = setup.start();
    assert_eq!(gateway.get("/health").status(), 200);
    let app = gateway.app.as_ref().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        app.tasks.first_dead(),
        None,
        "every task, the display's too, still runs"
    );
    assert_eq!(gateway.get("/health").status(), 200);
}
