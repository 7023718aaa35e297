//! `aisopod hardware test`: for people assembling the device. Lights the LED, draws a
//! test pattern and then a QR code on the display, waits for a press of the button (up
//! to a timeout) and prints what it found, with the reason for anything missing. Exit 0
//! when a display, the LED and a press were all found, 1 otherwise. It changes no state.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use crate::config::{self, ProcessEnvironment};
use crate::hardware::button::{self, ButtonEvent};
use crate::hardware::screens::{Screen, render};
use crate::hardware::select::{open_button, open_display, open_led};
use crate::secret::Secret;

/// What the test QR code says; a reader showing it proves the display is readable.
pub const TEST_PAYLOAD: &str = "HTTPS://AISOPOD.LOCAL/HARDWARE-TEST";

#[derive(Debug, Subcommand)]
pub enum HardwareCommand {
    /// Light the LED, draw a test pattern and a QR code, wait for a button press
    Test {
        /// How long to wait for a press
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Also write the QR screen, as the display shows it, to this PNG file
        #[arg(long, value_name = "PATH")]
        png: Option<PathBuf>,
    },
}

pub fn run(config_path: Option<&Path>, command: HardwareCommand) -> anyhow::Result<ExitCode> {
    let HardwareCommand::Test { timeout, png } = command;
    let env = ProcessEnvironment;
    let path = config::locate(config_path, &env);
    let config = config::load(path.as_deref(), &env)?.hardware;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut found_all = true;

    let (mut led, led_problem) = open_led(&config);
    match led_problem.map_or_else(|| led.set(true).err(), Some) {
        None => println!("LED:     {} (lit: check that it shines)", led.describe()),
        Some(err) => {
            found_all = false;
            println!("LED:     not found ({err})");
        }
    }

    let now = time::OffsetDateTime::now_utc();
    let qr_screen = Screen::Pairing {
        payload: Secret::new(TEST_PAYLOAD),
        code: "TEST".into(),
        expires_at: now + timeout + Duration::from_secs(5),
    };
    let qr_frame = render(&qr_screen, now)?;
    if let Some(png) = &png {
        crate::hardware::png::write(&qr_frame, png)?;
        println!("PNG:     {}", png.display());
    }
    let (display, skipped) = open_display(&config);
    match display {
        Ok(mut display) => {
            let pattern = render(
                &Screen::TestPattern {
                    title: "aisopod hardware test".into(),
                },
                now,
            )?;
            let shown = display.show(&pattern).and_then(|()| {
                std::thread::sleep(Duration::from_millis(1500));
                display.show(&qr_frame)
            });
            match shown {
                Ok(()) => println!(
                    "display: {} (a test pattern, then a QR code that reads {TEST_PAYLOAD})",
                    display.describe()
                ),
                Err(err) => {
                    found_all = false;
                    println!("display: {} failed: {err}", display.describe());
                }
            }
            if display.describe() == "no display" {
                found_all = false;
            }
        }
        Err(err) => {
            found_all = false;
            println!("display: not found ({err})");
        }
    }
    for reason in &skipped {
        println!("         passed over: {reason}");
    }

    let (button, button_problem) = open_button(&config);
    match button_problem {
        Some(err) => {
            found_all = false;
            println!("button:  not found ({err})");
        }
        None => {
            let described = button.describe();
            println!(
                "button:  {described}: press it now (waiting {})",
                humantime::format_duration(timeout)
            );
            let pressed = runtime.block_on(async {
                let mut events = button::spawn(button, config.debounce, config.long_press)?;
                Ok::<_, crate::hardware::HardwareError>(
                    tokio::time::timeout(timeout, events.recv())
                        .await
                        .ok()
                        .flatten(),
                )
            })?;
            match pressed {
                Some(ButtonEvent::Short) => println!("button:  short press seen"),
                Some(ButtonEvent::Long) => println!("button:  long press seen"),
                None => {
                    found_all = false;
                    println!(
                        "button:  no press within {}",
                        humantime::format_duration(timeout)
                    );
                }
            }
        }
    }
    let _ = led.set(false);
    if found_all {
        println!("all hardware answered");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("some hardware is missing: see the wiring in the documentation (hardware.md)");
        Ok(ExitCode::from(1))
    }
}
