use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::macros::datetime;
use tokio::sync::watch;

use super::decode_frame;
use crate::clock::{ManualClock, SharedClock};
use crate::hardware::display::Display;
use crate::hardware::error::HardwareError;
use crate::hardware::frame::Frame;
use crate::hardware::screens::Screen;
use crate::hardware::task::run;
use crate::secret::Secret;

const PAYLOAD: &str = "HTTPS://AISOPOD.LOCAL/P#ABCDEFGHIJKLMNOP";

/// A display that fails its first `failures` shows (like an unplugged module) and records
/// every attempt's time and every frame it showed.
#[derive(Debug, Clone, Default)]
struct MockDisplay {
    failures: Arc<AtomicUsize>,
    attempts: Arc<Mutex<Vec<tokio::time::Instant>>>,
    shown: Arc<Mutex<Vec<Frame>>>,
}

impl Display for MockDisplay {
    fn describe(&self) -> String {
        "mock".into()
    }

    fn show(&mut self, frame: &Frame) -> Result<(), HardwareError> {
        self.attempts
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(HardwareError::Ssd1306 {
                address: 0x3C,
                reason: "BusWriteError".into(),
            });
        }
        self.shown.lock().unwrap().push(frame.clone());
        Ok(())
    }
}

impl MockDisplay {
    fn last(&self) -> Frame {
        self.shown.lock().unwrap().last().cloned().unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn the_pairing_code_leaves_the_display_at_its_expiry_without_a_new_screen() {
    let start = datetime!(2026-01-01 12:00 UTC);
    let clock = Arc::new(ManualClock::new(start));
    let display = MockDisplay::default();
    let (tx, rx) = watch::channel(Screen::Pairing {
        payload: Secret::new(PAYLOAD),
        code: "K7Q2".into(),
        expires_at: start + time::Duration::seconds(5),
    });
    let task = tokio::spawn(run(
        Box::new(display.clone()),
        rx,
        clock.clone() as SharedClock,
        Arc::default(),
    ));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(decode_frame(&display.last()), [PAYLOAD]);
    let first = display.last();
    // Each second the countdown is redrawn, the code still shown.
    clock.advance(time::Duration::milliseconds(4900));
    tokio::time::sleep(Duration::from_millis(4900)).await;
    assert_ne!(display.last(), first, "countdown redrawn");
    assert_eq!(decode_frame(&display.last()), [PAYLOAD]);
    // At expiry the task clears it by itself.
    clock.advance(time::Duration::milliseconds(100));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        decode_frame(&display.last()).is_empty(),
        "code gone at expiry"
    );
    let shows = display.shown.lock().unwrap().len();
    // Nothing more to redraw afterwards.
    clock.advance(time::Duration::seconds(60));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(display.shown.lock().unwrap().len(), shows);
    drop(tx);
    task.await.unwrap();
    assert_eq!(display.last(), Frame::new(), "blank when the gateway stops");
}

#[tokio::test(start_paused = true)]
async fn a_failing_display_is_retried_with_growing_pauses_and_shows_the_latest_screen_when_back() {
    let clock: SharedClock = Arc::new(ManualClock::new(datetime!(2026-01-01 12:00 UTC)));
    let display = MockDisplay::default();
    display.failures.store(4, Ordering::SeqCst);
    let status = |devices| Screen::Status {
        url: "https://aisopod.local:3080".into(),
        address: "aisopod.local".into(),
        devices,
    };
    let (tx, rx) = watch::channel(status(None));
    let started = tokio::time::Instant::now();
    let alerts = Arc::new(crate::hardware::Alerts::default());
    let task = tokio::spawn(run(Box::new(display.clone()), rx, clock, alerts.clone()));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // While it fails, the owner is told (the LED's error pattern reads this).
    let raised = alerts.current();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].0, "display");
    // The screen changes while the display is out: the latest one is what comes back.
    tx.send(status(Some(3))).unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let attempts: Vec<u64> = display
        .attempts
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.duration_since(started).as_millis() as u64)
        .collect();
    // 0 fails, 1 s later fails, 2 s later (3 s) would be next, but the new screen at
    // 2.5 s is tried at once (fails), then 4 s later (6.5 s) fails, 8 s later works.
    assert_eq!(attempts, [0, 1000, 2500, 6500, 14_500]);
    let shown = display.shown.lock().unwrap().clone();
    assert_eq!(shown.len(), 1);
    let expected =
        crate::hardware::screens::render(&status(Some(3)), datetime!(2026-01-01 12:00 UTC))
            .unwrap();
    assert_eq!(shown[0], expected);
    assert!(alerts.is_empty(), "cleared once the display is back");
    assert!(!task.is_finished(), "the task keeps running");
    drop(tx);
    task.await.unwrap();
}
