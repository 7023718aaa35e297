//! The button's raw edges turned into presses: contact bounce filtered out, a press held
//! past the long-press time reported as `Long` as soon as it gets there (so a person
//! holding the button sees pairing start without letting go), anything shorter as `Short`
//! on release. The logic ([`Debouncer`]) takes the time as an argument, so tests feed it
//! edges at chosen instants; [`spawn`] drives it from a device's edges. It never decides
//! what a press means.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, UnboundedReceiver};

use crate::hardware::display::{Button, Edge};
use crate::hardware::error::HardwareError;

/// A press, as a person meant it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonEvent {
    /// Pressed and released before the long-press time: confirm what the display asks.
    Short,
    /// Held for the long-press time: start pairing.
    Long,
}

/// Debounces edges: the contact's state counts only once it has held still for the
/// debounce time.
#[derive(Debug, Clone)]
pub struct Debouncer {
    debounce: Duration,
    long_press: Duration,
    /// The contact as last reported, and since when.
    raw: bool,
    raw_since: Option<Instant>,
    /// The settled state.
    pressed: bool,
    pressed_at: Option<Instant>,
    long_sent: bool,
}

impl Debouncer {
    pub fn new(debounce: Duration, long_press: Duration) -> Debouncer {
        Debouncer {
            debounce,
            long_press,
            raw: false,
            raw_since: None,
            pressed: false,
            pressed_at: None,
            long_sent: false,
        }
    }

    /// Records an edge. Nothing is decided until the contact has settled: call
    /// [`Debouncer::tick`] at [`Debouncer::next_deadline`].
    pub fn edge(&mut self, edge: Edge) -> Option<ButtonEvent> {
        let event = self.tick(edge.at);
        if edge.pressed != self.raw {
            self.raw = edge.pressed;
            self.raw_since = Some(edge.at);
        }
        event
    }

    /// Settles the state as of `now` and reports a press that completed.
    pub fn tick(&mut self, now: Instant) -> Option<ButtonEvent> {
        if let Some(since) = self.raw_since
            && self.raw != self.pressed
            && now.saturating_duration_since(since) >= self.debounce
        {
            // The change took effect when the contact last moved, not when we noticed.
            self.pressed = self.raw;
            if self.pressed {
                self.pressed_at = Some(since);
                self.long_sent = false;
            } else {
                let was_long = self.long_sent
                    || self
                        .pressed_at
                        .is_some_and(|at| since.saturating_duration_since(at) >= self.long_press);
                self.pressed_at = None;
                if was_long {
                    let first = !self.long_sent;
                    self.long_sent = false;
                    return first.then_some(ButtonEvent::Long);
                }
                return Some(ButtonEvent::Short);
            }
        }
        if self.pressed
            && !self.long_sent
            && self
                .pressed_at
                .is_some_and(|at| now.saturating_duration_since(at) >= self.long_press)
        {
            self.long_sent = true;
            return Some(ButtonEvent::Long);
        }
        None
    }

    /// When [`Debouncer::tick`] may next have something to say, if anything is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.raw != self.pressed {
            return self.raw_since.map(|since| since + self.debounce);
        }
        if self.pressed && !self.long_sent {
            return self.pressed_at.map(|at| at + self.long_press);
        }
        None
    }
}

/// Starts `button` and a task turning its edges into [`ButtonEvent`]s. The task ends
/// when the receiver is dropped or the button stops sending.
pub fn spawn(
    mut button: Box<dyn Button>,
    debounce: Duration,
    long_press: Duration,
) -> Result<UnboundedReceiver<ButtonEvent>, HardwareError> {
    let (edge_tx, edge_rx) = mpsc::unbounded_channel();
    button.listen(edge_tx)?;
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // The button lives as long as its interrupt is wanted.
        let _button = button;
        run(edge_rx, Debouncer::new(debounce, long_press), event_tx).await;
    });
    Ok(event_rx)
}

/// Feeds edges into `debouncer` and sends each press; ticks at each deadline.
pub async fn run(
    mut edges: UnboundedReceiver<Edge>,
    mut debouncer: Debouncer,
    events: mpsc::UnboundedSender<ButtonEvent>,
) {
    loop {
        let deadline = debouncer.next_deadline();
        let event = tokio::select! {
            edge = edges.recv() => match edge {
                Some(edge) => debouncer.edge(edge),
                None => return,
            },
            () = sleep_until(deadline) => debouncer.tick(Instant::now()),
        };
        if let Some(event) = event
            && events.send(event).is_err()
        {
            return;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep(at.saturating_duration_since(Instant::now())).await,
        None => std::future::pending().await,
    }
}
