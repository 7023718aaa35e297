use time::OffsetDateTime;
use time::macros::datetime;

use super::{decode_frame, decode_png};
use crate::hardware::frame::Frame;
use crate::hardware::png::{PNG_SCALE, encode};
use crate::hardware::qr::{
    Correction, MAX_ALPHANUMERIC, QrError, QrMatrix, SIDE, uppercase_origin,
};
use crate::hardware::screens::{Screen, render, shorten, wrap};
use crate::secret::Secret;

const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);
const PAYLOAD: &str = "HTTPS://AISOPOD.LOCAL/P#ABCDEFGHIJKLMNOP";

fn pairing(payload: &str) -> Screen {
    Screen::Pairing {
        payload: Secret::new(payload),
        code: "K7Q2".into(),
        expires_at: NOW + time::Duration::minutes(2),
    }
}

/// Renders `screen`, then reads its QR code back out of the frame and out of the PNG.
fn decoded(screen: &Screen) -> (Frame, Vec<String>, Vec<String>) {
    let frame = render(screen, NOW).unwrap();
    let png = encode(&frame).unwrap();
    (frame.clone(), decode_frame(&frame), decode_png(&png))
}

#[test]
fn the_pairing_screen_decodes_back_to_the_exact_payload_from_the_frame_and_the_png() {
    for payload in [
        PAYLOAD,
        // The longest payload that still fits at error correction M.
        &format!("HTTPS://AISOPOD.LOCAL/P#{}", "A".repeat(61 - 24)),
        // A short byte-mode segment among alphanumeric ones.
        "HTTPS://pi-4.local/P#ABCDEFGHIJKLMNOP",
    ] {
        let (_, from_frame, from_png) = decoded(&pairing(payload));
        assert_eq!(from_frame, [payload.to_string()], "frame of {payload}");
        assert_eq!(from_png, [payload.to_string()], "PNG of {payload}");
    }
}

#[test]
fn the_claim_screen_decodes_to_the_setup_url_and_shows_the_code_beside_it() {
    let screen = Screen::Claim {
        code: Secret::new("ABCD-EFGH-JKLM-NPQR"),
        setup_url: "HTTPS://AISOPOD.LOCAL/SETUP/CLAIM".into(),
    };
    let (frame, from_frame, from_png) = decoded(&screen);
    assert_eq!(from_frame, ["HTTPS://AISOPOD.LOCAL/SETUP/CLAIM"]);
    assert_eq!(from_png, ["HTTPS://AISOPOD.LOCAL/SETUP/CLAIM"]);
    // The text column right of the code is drawn.
    let text_lit = (SIDE + 2..128)
        .flat_map(|x| (0..64).map(move |y| (x, y)))
        .filter(|&(x, y)| frame.pixel(x, y))
        .count();
    assert!(text_lit > 100, "{text_lit} pixels of text");
}

#[test]
fn the_code_is_dark_modules_on_lit_pixels_with_a_lit_quiet_zone() {
    let frame = render(&pairing(PAYLOAD), NOW).unwrap();
    let matrix = QrMatrix::encode(PAYLOAD).unwrap();
    assert_eq!(matrix.width(), 29, "version 3");
    // The quiet zone's ring of pixels is lit all round.
    for i in 0..SIDE {
        for (x, y) in [(i, 1), (i, 2), (0, 1 + i), (1, 1 + i), (SIDE - 1, 1 + i)] {
            assert!(frame.pixel(x, y), "quiet zone at ({x}, {y})");
        }
    }
    // Each module is two by two pixels: the top-left finder's corner module is dark.
    assert!(matrix.is_dark(0, 0));
    for (x, y) in [(2, 3), (3, 3), (2, 4), (3, 4)] {
        assert!(!frame.pixel(x, y), "dark module at ({x}, {y})");
    }
}

#[test]
fn capacity_is_61_alphanumeric_at_m_77_at_l_and_beyond_that_a_clear_refusal() {
    let fits_m = "A".repeat(61);
    assert_eq!(
        QrMatrix::encode(&fits_m).unwrap().correction(),
        Correction::Medium
    );
    let needs_l = "A".repeat(62);
    assert_eq!(
        QrMatrix::encode(&needs_l).unwrap().correction(),
        Correction::Low
    );
    assert_eq!(
        QrMatrix::encode(&"A".repeat(77)).unwrap().correction(),
        Correction::Low
    );
    assert_eq!(
        QrMatrix::encode(&"A".repeat(78)).unwrap_err(),
        QrError::TooLong {
            len: 78,
            max: MAX_ALPHANUMERIC
        }
    );
    // Lower case needs byte mode: 42 bytes fit at M, 53 at L.
    assert_eq!(
        QrMatrix::encode(&"a".repeat(42)).unwrap().correction(),
        Correction::Medium
    );
    assert_eq!(
        QrMatrix::encode(&"a".repeat(54)).unwrap_err(),
        QrError::TooLong { len: 54, max: 53 }
    );
    // A screen with a payload too long is an error, not a cropped code.
    let err = render(&pairing(&"A".repeat(78)), NOW).unwrap_err();
    assert!(err.to_string().contains("at most 77"), "{err}");
}

#[test]
fn an_expired_pairing_screen_shows_no_code() {
    let screen = pairing(PAYLOAD);
    let before = render(&screen, NOW + time::Duration::seconds(119)).unwrap();
    assert_eq!(decode_frame(&before), [PAYLOAD]);
    for later in [120, 121, 3600] {
        let after = render(&screen, NOW + time::Duration::seconds(later)).unwrap();
        assert!(decode_frame(&after).is_empty(), "{later} s after");
        assert!(after.lit_count() < 1000, "no QR drawn {later} s after");
    }
}

#[test]
fn the_countdown_changes_as_time_passes() {
    let screen = pairing(PAYLOAD);
    let a = render(&screen, NOW).unwrap();
    let b = render(&screen, NOW + time::Duration::seconds(1)).unwrap();
    assert_ne!(a, b);
    assert!(screen.ticks());
}

#[test]
fn every_text_screen_renders_and_long_input_is_shortened_not_overflowing() {
    let long = "x".repeat(500);
    for screen in [
        Screen::PairingConfirm {
            device: "Ana's phone \u{1F600}".into(),
            code: "493 117".into(),
            expires_at: NOW + time::Duration::seconds(30),
        },
        Screen::Approval {
            tool: "shell".into(),
            command: format!("rm -rf ./build && {long}"),
        },
        Screen::Status {
            url: "https://aisopod.local:3080".into(),
            address: "192.0.2.7".into(),
            devices: Some(2),
        },
        Screen::TestPattern {
            title: "hardware test".into(),
        },
        Screen::Message {
            title: long.clone(),
            body: long.clone(),
        },
    ] {
        let frame = render(&screen, NOW).unwrap();
        assert!(frame.lit_count() > 50, "{screen:?} draws something");
    }
    assert_eq!(shorten("abcdefgh", 6), "abcd..");
    assert_eq!(shorten("tab\there", 20), "tab?here");
    assert_eq!(
        wrap("ls -la\n  /tmp && echo done", 8, 2),
        ["ls -la", "/tmp &.."]
    );
    assert_eq!(
        wrap("aisopod hardware test", 9, 4),
        ["aisopod", "hardware", "test"]
    );
    assert_eq!(wrap("abcdefghijkl", 5, 2), ["abcde", "fgh.."]);
    assert_eq!(wrap("a b", 5, 0), Vec::<String>::new());
}

#[test]
fn the_png_is_the_frame_scaled_by_four_one_bit_per_pixel() {
    let mut frame = Frame::new();
    frame.set(0, 0, true);
    frame.set(127, 63, true);
    let bytes = encode(&frame).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    assert_eq!((info.width, info.height), (128 * PNG_SCALE, 64 * PNG_SCALE));
    let lit = |x: usize, y: usize| buffer[y * info.line_size + x / 8] & (0x80 >> (x % 8)) != 0;
    assert!(lit(0, 0) && lit(3, 3) && !lit(4, 0) && !lit(0, 4));
    assert!(lit(511, 255) && lit(508, 252) && !lit(507, 255));
    let on: usize = buffer.iter().map(|b| b.count_ones() as usize).sum();
    assert_eq!(on, 2 * 16);
}

#[test]
fn screens_with_secrets_do_not_print_them() {
    let text = format!(
        "{:?} {:?}",
        pairing(PAYLOAD),
        Screen::Claim {
            code: Secret::new("ABCD-EFGH-JKLM-NPQR"),
            setup_url: "https://x/setup".into(),
        }
    );
    assert!(
        !text.contains("ABCDEFGH") && !text.contains("ABCD-EFGH"),
        "{text}"
    );
    assert!(!format!("{:?}", QrMatrix::encode(PAYLOAD).unwrap()).contains("ABC"));
}

#[test]
fn the_setup_url_keeps_its_path_and_fits_with_room_to_spare() {
    let url = uppercase_origin("https://aisopod.local:3080/setup/claim");
    assert_eq!(url, "HTTPS://AISOPOD.LOCAL:3080/setup/claim");
    assert_eq!(
        uppercase_origin("http://[fe80::1]:3080"),
        "HTTP://[FE80::1]:3080"
    );
    assert_eq!(uppercase_origin("no scheme/x"), "NO SCHEME/x");
    let long = uppercase_origin("https://192.168.100.200:3080/setup/claim");
    assert_eq!(
        QrMatrix::encode(&long).unwrap().correction(),
        Correction::Medium
    );
}
