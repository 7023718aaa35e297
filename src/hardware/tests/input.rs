use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::hardware::button::{ButtonEvent, Debouncer};
use crate::hardware::display::{Edge, Led};
use crate::hardware::error::HardwareError;
use crate::hardware::led::{LedPattern, run};

const DEBOUNCE: Duration = Duration::from_millis(30);
const LONG: Duration = Duration::from_secs(3);

/// Feeds `edges` (milliseconds after a start, pressed or not) and ticks at every
/// deadline the debouncer asks for, then `until` ms; returns the presses with when.
fn presses(edges: &[(u64, bool)], until: u64) -> Vec<(u64, ButtonEvent)> {
    let start = Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let mut debouncer = Debouncer::new(DEBOUNCE, LONG);
    let mut out = Vec::new();
    let note = |event: Option<ButtonEvent>, ms: u64, out: &mut Vec<_>| {
        if let Some(event) = event {
            out.push((ms, event));
        }
    };
    let mut pending = edges.iter().copied().peekable();
    let mut now = 0;
    while now <= until {
        let next_edge = pending.peek().map(|&(ms, _)| ms);
        let deadline = debouncer
            .next_deadline()
            .map(|d| d.duration_since(start).as_millis() as u64);
        let next = [next_edge, deadline, Some(until)]
            .into_iter()
            .flatten()
            .filter(|&t| t >= now)
            .min()
            .unwrap();
        now = next;
        if next_edge == Some(now) {
            let (_, pressed) = pending.next().unwrap();
            let event = debouncer.edge(Edge {
                pressed,
                at: at(now),
            });
            note(event, now, &mut out);
        } else {
            note(debouncer.tick(at(now)), now, &mut out);
            if now == until {
                break;
            }
            if debouncer.next_deadline().is_none() && pending.peek().is_none() {
                now = until;
                note(debouncer.tick(at(now)), now, &mut out);
                break;
            }
        }
    }
    out
}

#[test]
fn bouncing_edges_within_the_window_are_one_short_press() {
    // Press bounces three times in 12 ms, release bounces twice.
    let edges = [
        (100, true),
        (104, false),
        (108, true),
        (112, false),
        (115, true),
        (400, false),
        (405, true),
        (410, false),
    ];
    assert_eq!(presses(&edges, 2000), [(440, ButtonEvent::Short)]);
}

#[test]
fn a_glitch_shorter_than_the_window_is_no_press() {
    assert_eq!(presses(&[(100, true), (110, false)], 5000), []);
}

#[test]
fn a_long_press_is_reported_once_while_still_held_and_not_again_on_release() {
    let edges = [
        (0, true),
        (3, false),
        (6, true),
        (5000, false),
        (5004, true),
        (5008, false),
    ];
    // Settled pressed at 6 ms (the last bounce): long at 3006 ms, while still held.
    assert_eq!(presses(&edges, 8000), [(3006, ButtonEvent::Long)]);
}

#[test]
fn a_press_just_under_the_long_time_is_short_and_two_presses_are_two() {
    let edges = [(0, true), (2900, false), (3500, true), (3600, false)];
    assert_eq!(
        presses(&edges, 10_000),
        [(2930, ButtonEvent::Short), (3630, ButtonEvent::Short)]
    );
}

#[test]
fn a_long_hold_noticed_only_at_release_is_still_long() {
    // No tick while held (a stalled task): the release still tells the hold's length.
    let start = Instant::now();
    let mut debouncer = Debouncer::new(DEBOUNCE, LONG);
    let at = |ms| start + Duration::from_millis(ms);
    assert_eq!(
        debouncer.edge(Edge {
            pressed: true,
            at: at(0)
        }),
        None
    );
    assert_eq!(
        debouncer.edge(Edge {
            pressed: false,
            at: at(4000)
        }),
        Some(ButtonEvent::Long)
    );
    // The release that follows adds no short press.
    assert_eq!(debouncer.tick(at(4100)), None);
    assert_eq!(debouncer.next_deadline(), None);
}

/// A mock LED pin: every change, with the (paused) tokio time it happened at.
#[derive(Debug, Clone, Default)]
struct RecordingLed(
    Arc<Mutex<Vec<(Duration, bool)>>>,
    Option<tokio::time::Instant>,
);

impl Led for RecordingLed {
    fn describe(&self) -> String {
        "recording".into()
    }

    fn set(&mut self, on: bool) -> Result<(), HardwareError> {
        let start = *self.1.get_or_insert_with(tokio::time::Instant::now);
        self.0.lock().unwrap().push((start.elapsed(), on));
        Ok(())
    }
}

fn millis(changes: &[(Duration, bool)]) -> Vec<(u64, bool)> {
    changes
        .iter()
        .map(|&(d, on)| (d.as_millis() as u64, on))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_led_plays_each_pattern_on_time_and_switches_at_once() {
    let led = RecordingLed::default();
    let changes = led.0.clone();
    let (tx, rx) = watch::channel(LedPattern::Pairing);
    let task = tokio::spawn(run(Box::new(led), rx));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        millis(&changes.lock().unwrap()),
        [
            (0, true),
            (200, false),
            (400, true),
            (600, false),
            (800, true)
        ]
    );
    changes.lock().unwrap().clear();
    tx.send(LedPattern::ApprovalWaiting).unwrap();
    tokio::time::sleep(Duration::from_millis(1250)).await;
    assert_eq!(
        millis(&changes.lock().unwrap()),
        [(900, true), (1050, false), (1200, true), (1350, false)]
    );
    changes.lock().unwrap().clear();
    tx.send(LedPattern::Ready).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        millis(&changes.lock().unwrap()),
        [(2150, true)],
        "steady, not re-set"
    );
    drop(tx);
    task.await.unwrap();
    assert_eq!(
        changes.lock().unwrap().last().map(|c| c.1),
        Some(false),
        "off at the end"
    );
}

#[test]
fn every_pattern_is_distinct_and_non_empty() {
    let all = [
        LedPattern::Off,
        LedPattern::Ready,
        LedPattern::Pairing,
        LedPattern::ApprovalWaiting,
        LedPattern::Error,
    ];
    for (i, a) in all.iter().enumerate() {
        assert!(!a.steps().is_empty());
        for b in &all[i + 1..] {
            assert_ne!(a.steps(), b.steps(), "{a:?} and {b:?}");
        }
    }
}
