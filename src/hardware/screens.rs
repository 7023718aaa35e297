//! What the display shows, as plain data, and how each screen is laid out in a frame.
//!
//! A [`Screen`] is built by whoever has something to show (start-up, pairing, approvals);
//! [`render`] turns it into a [`Frame`] for a moment in time. A screen that carries a
//! secret carries its expiry too, and from that moment on renders without the secret: the
//! display never shows a pairing code longer than its offer lives. Nothing here talks to
//! a device or decides when to show what.

use std::fmt;

use embedded_graphics::Drawable;
use embedded_graphics::mono_font::ascii::{FONT_6X10, FONT_9X15_BOLD};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{Point, Primitive, Size};
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use time::OffsetDateTime;

use crate::hardware::frame::{Frame, HEIGHT, WIDTH};
use crate::hardware::qr::{QrError, QrMatrix, SIDE};
use crate::secret::Secret;

/// One thing for the display to show.
#[derive(Clone, PartialEq)]
pub enum Screen {
    /// Nothing: the panel dark.
    Blank,
    /// First run, no account yet: the one-time claim code and a QR of the setup page.
    Claim {
        /// The claim code as people type it (`XXXX-XXXX-XXXX-XXXX`).
        code: Secret,
        /// The setup page's URL, encoded in the QR.
        setup_url: String,
    },
    /// An open pairing offer: the QR a phone scans, a code to read out, a countdown.
    Pairing {
        /// The URL with the offer's secret; shown only until `expires_at`.
        payload: Secret,
        /// A short human-readable form of the offer.
        code: String,
        expires_at: OffsetDateTime,
    },
    /// A phone claimed the offer: its name and the short code it also shows, to be
    /// confirmed with a short press.
    PairingConfirm {
        device: String,
        code: String,
        expires_at: OffsetDateTime,
    },
    /// A tool call waits for a person's approval.
    Approval { tool: String, command: String },
    /// Everyday: where the gateway answers and how many devices are paired (when known).
    Status {
        url: String,
        address: String,
        devices: Option<usize>,
    },
    /// For people assembling the device: a border, a checkerboard and a title.
    TestPattern { title: String },
    /// A short message of up to five lines (errors, `hardware test` prompts).
    Message { title: String, body: String },
}

impl fmt::Debug for Screen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Screen::Blank => f.write_str("Blank"),
            Screen::Claim { setup_url, .. } => f
                .debug_struct("Claim")
                .field("setup_url", setup_url)
                .finish_non_exhaustive(),
            Screen::Pairing { expires_at, .. } => f
                .debug_struct("Pairing")
                .field("expires_at", expires_at)
                .finish_non_exhaustive(),
            Screen::PairingConfirm {
                device, expires_at, ..
            } => f
                .debug_struct("PairingConfirm")
                .field("device", device)
                .field("expires_at", expires_at)
                .finish_non_exhaustive(),
            Screen::Approval { tool, .. } => f
                .debug_struct("Approval")
                .field("tool", tool)
                .finish_non_exhaustive(),
            Screen::Status {
                url,
                address,
                devices,
            } => f
                .debug_struct("Status")
                .field("url", url)
                .field("address", address)
                .field("devices", devices)
                .finish(),
            Screen::TestPattern { title } => {
                f.debug_struct("TestPattern").field("title", title).finish()
            }
            Screen::Message { title, .. } => f
                .debug_struct("Message")
                .field("title", title)
                .finish_non_exhaustive(),
        }
    }
}

impl Screen {
    /// When this screen stops being fit to show, if it carries a secret that expires.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        match self {
            Screen::Pairing { expires_at, .. } | Screen::PairingConfirm { expires_at, .. } => {
                Some(*expires_at)
            }
            _ => None,
        }
    }

    /// Whether the screen has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }

    /// Whether the screen changes as time passes (a countdown), so it is redrawn.
    pub fn ticks(&self) -> bool {
        self.expires_at().is_some()
    }
}

/// Characters of the small font across the whole width.
pub const LINE_CHARS: usize = (WIDTH / 6) as usize;
/// Characters of the small font beside a QR code.
pub const SIDE_CHARS: usize = ((WIDTH - SIDE - 3) / 6) as usize;

const SMALL: &MonoFont<'static> = &FONT_6X10;
const LARGE: &MonoFont<'static> = &FONT_9X15_BOLD;
/// Left edge of the text column beside a QR code.
const SIDE_X: i32 = SIDE as i32 + 3;
/// The QR's top edge, centring its 62 pixels in the 64.
const QR_TOP: u32 = (HEIGHT - SIDE) / 2;

/// Lays `screen` out as it looks at `now`. An expired screen renders as "Expired" with no
/// secret; a payload too long for the display is an error, never a cropped code.
pub fn render(screen: &Screen, now: OffsetDateTime) -> Result<Frame, QrError> {
    let mut frame = Frame::new();
    if screen.is_expired(now) {
        text(&mut frame, LARGE, 0, 8, "Expired");
        text(&mut frame, SMALL, 0, 32, "Start pairing again");
        return Ok(frame);
    }
    match screen {
        Screen::Blank => {}
        Screen::Claim { code, setup_url } => {
            QrMatrix::encode(setup_url)?.draw(&mut frame, 0, QR_TOP);
            let mut lines = vec!["Claim code".to_string()];
            lines.extend(
                code.expose()
                    .split('-')
                    .collect::<Vec<_>>()
                    .chunks(2)
                    .map(|pair| pair.join("-")),
            );
            lines.push("Scan to".into());
            lines.push("set up".into());
            side_lines(&mut frame, &lines);
        }
        Screen::Pairing {
            payload,
            code,
            expires_at,
        } => {
            QrMatrix::encode(payload.expose())?.draw(&mut frame, 0, QR_TOP);
            side_lines(&mut frame, &["Pair phone".into()]);
            text(&mut frame, LARGE, SIDE_X, 14, &shorten(code, 6));
            let left = countdown(*expires_at - now);
            text(&mut frame, SMALL, SIDE_X, 36, &left);
            text(&mut frame, SMALL, SIDE_X, 50, "Scan me");
        }
        Screen::PairingConfirm {
            device,
            code,
            expires_at,
        } => {
            text(&mut frame, SMALL, 0, 0, "Pair this device?");
            text(&mut frame, SMALL, 0, 12, &shorten(device, LINE_CHARS));
            text(&mut frame, LARGE, 0, 24, &shorten(code, 14));
            let left = countdown(*expires_at - now);
            text(
                &mut frame,
                SMALL,
                0,
                42,
                &format!("Press to confirm {left}"),
            );
            text(&mut frame, SMALL, 0, 53, "if phone shows it");
        }
        Screen::Approval { tool, command } => {
            text(&mut frame, SMALL, 0, 0, "Approve tool call?");
            text(&mut frame, SMALL, 0, 12, &shorten(tool, LINE_CHARS));
            for (i, line) in wrap(command, LINE_CHARS, 2).iter().enumerate() {
                text(&mut frame, SMALL, 0, 24 + 10 * i as i32, line);
            }
            text(&mut frame, SMALL, 0, 53, "Press to approve");
        }
        Screen::Status {
            url,
            address,
            devices,
        } => {
            text(&mut frame, SMALL, 0, 0, "aisopod ready");
            // The scheme costs eight of the 21 characters and says nothing a person types.
            let shown = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or(url);
            text(&mut frame, SMALL, 0, 14, &shorten(shown, LINE_CHARS));
            text(&mut frame, SMALL, 0, 26, &shorten(address, LINE_CHARS));
            let paired = match devices {
                Some(1) => "1 paired device".to_string(),
                Some(n) => format!("{n} paired devices"),
                None => String::new(),
            };
            text(&mut frame, SMALL, 0, 40, &paired);
            text(&mut frame, SMALL, 0, 53, "Hold button: pair");
        }
        Screen::TestPattern { title } => {
            let style = PrimitiveStyle::with_stroke(BinaryColor::On, 1);
            let border = Rectangle::new(Point::zero(), Size::new(WIDTH, HEIGHT));
            let Ok(()) = border.into_styled(style).draw(&mut frame);
            for y in (4..HEIGHT - 4).step_by(4) {
                for x in (4..WIDTH / 2).step_by(4) {
                    if (x / 4 + y / 4) % 2 == 0 {
                        frame.fill_rect(x, y, 4, 4, true);
                    }
                }
            }
            for (i, line) in wrap(title, 9, 4).iter().enumerate() {
                text(
                    &mut frame,
                    SMALL,
                    WIDTH as i32 / 2 + 4,
                    6 + 12 * i as i32,
                    line,
                );
            }
        }
        Screen::Message { title, body } => {
            text(&mut frame, SMALL, 0, 0, &shorten(title, LINE_CHARS));
            for (i, line) in wrap(body, LINE_CHARS, 5).iter().enumerate() {
                text(&mut frame, SMALL, 0, 12 + 10 * i as i32, line);
            }
        }
    }
    Ok(frame)
}

fn side_lines(frame: &mut Frame, lines: &[String]) {
    for (i, line) in lines.iter().enumerate() {
        text(
            frame,
            SMALL,
            SIDE_X,
            2 + 12 * i as i32,
            &shorten(line, SIDE_CHARS),
        );
    }
}

fn text(frame: &mut Frame, font: &MonoFont<'_>, x: i32, y: i32, content: &str) {
    let style = MonoTextStyle::new(font, BinaryColor::On);
    let printable = printable(content);
    let Ok(_) = Text::with_baseline(&printable, Point::new(x, y), style, Baseline::Top).draw(frame);
}

/// Minutes and seconds left, `m:ss`, never negative.
fn countdown(left: time::Duration) -> String {
    let seconds = left.whole_seconds().max(0);
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// The font draws ASCII only: anything else (and control characters) becomes `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// `text` cut to `max` characters, the cut marked with `..`.
pub fn shorten(text: &str, max: usize) -> String {
    let text = printable(text.trim());
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(2)).collect();
    cut.push_str("..");
    cut
}

/// `text` in at most `lines` lines of `width` characters, broken between words where it
/// can be (a word longer than a line is cut), the last line shortened if the rest does
/// not fit. Whitespace runs (newlines included) count as one space.
pub fn wrap(text: &str, width: usize, lines: usize) -> Vec<String> {
    let width = width.max(1);
    let words: Vec<String> = text.split_whitespace().map(printable).collect();
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut rest = words.iter().peekable();
    while let Some(word) = rest.next() {
        if out.len() + 1 == lines {
            // The last line takes everything left, shortened.
            let mut tail = line.clone();
            for w in std::iter::once(word).chain(rest.by_ref()) {
                if !tail.is_empty() {
                    tail.push(' ');
                }
                tail.push_str(w);
            }
            out.push(shorten(&tail, width));
            return out;
        }
        let joined = if line.is_empty() {
            word.clone()
        } else {
            format!("{line} {word}")
        };
        if joined.chars().count() <= width {
            line = joined;
            continue;
        }
        if !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        let mut chars: Vec<char> = word.chars().collect();
        while chars.len() > width && out.len() + 1 < lines {
            out.push(chars.drain(..width).collect());
        }
        line = chars.into_iter().collect();
        if out.len() + 1 == lines && rest.peek().is_none() {
            break;
        }
    }
    if !line.is_empty() && out.len() < lines {
        out.push(shorten(&line, width));
    }
    out
}
