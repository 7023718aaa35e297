//! The LED's patterns as data (on and off durations, repeated) and the task that plays
//! the current one. A pattern is chosen by whoever knows the state (ready, pairing, an
//! approval waiting, an error); this module only blinks. A failing LED is logged once and
//! the task goes on, since a dark LED must never stop the gateway.

use std::time::Duration;

use tokio::sync::watch;

use crate::hardware::display::Led;

/// One step of a pattern: lit or dark, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub on: bool,
    pub for_: Duration,
}

const fn step(on: bool, millis: u64) -> Step {
    Step {
        on,
        for_: Duration::from_millis(millis),
    }
}

/// What the LED says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedPattern {
    Off,
    /// Steady on: the gateway runs.
    Ready,
    /// Quick even blinking: a pairing offer is open.
    Pairing,
    /// Two short blinks and a pause: a tool call waits for approval.
    ApprovalWaiting,
    /// Three quick flashes and a long pause: something needs attention.
    Error,
}

impl LedPattern {
    /// The steps, played in a loop. A single step is held.
    pub fn steps(self) -> &'static [Step] {
        const OFF: &[Step] = &[step(false, 1000)];
        const READY: &[Step] = &[step(true, 1000)];
        const PAIRING: &[Step] = &[step(true, 200), step(false, 200)];
        const APPROVAL: &[Step] = &[
            step(true, 150),
            step(false, 150),
            step(true, 150),
            step(false, 850),
        ];
        const ERROR: &[Step] = &[
            step(true, 100),
            step(false, 100),
            step(true, 100),
            step(false, 100),
            step(true, 100),
            step(false, 1500),
        ];
        match self {
            LedPattern::Off => OFF,
            LedPattern::Ready => READY,
            LedPattern::Pairing => PAIRING,
            LedPattern::ApprovalWaiting => APPROVAL,
            LedPattern::Error => ERROR,
        }
    }
}

/// Plays the pattern in `patterns` on `led` until the sender is dropped, then turns the
/// LED off. A new pattern starts at once, from its first step.
pub async fn run(mut led: Box<dyn Led>, mut patterns: watch::Receiver<LedPattern>) {
    let mut warned = false;
    let mut set = |led: &mut Box<dyn Led>, on: bool| {
        if let Err(err) = led.set(on)
            && !warned
        {
            tracing::warn!(led = %led.describe(), error = %err, "LED failed; the gateway runs on without it");
            warned = true;
        }
    };
    'patterns: loop {
        let pattern = *patterns.borrow_and_update();
        let steps = pattern.steps();
        let mut index = 0;
        while let Some(step) = steps.get(index % steps.len().max(1)) {
            set(&mut led, step.on);
            let hold = steps.len() == 1;
            tokio::select! {
                changed = patterns.changed() => {
                    if changed.is_err() {
                        set(&mut led, false);
                        return;
                    }
                    continue 'patterns;
                }
                () = tokio::time::sleep(step.for_), if !hold => index += 1,
            }
        }
        // Only a pattern with no steps gets here; wait for the next.
        if patterns.changed().await.is_err() {
            set(&mut led, false);
            return;
        }
    }
}
