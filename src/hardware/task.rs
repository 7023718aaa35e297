//! The display task: shows the [`Screen`] in a `watch` channel, redraws countdowns each
//! second, and blanks a screen's secret the moment its expiry passes (by the injected
//! clock), whether or not anyone sends a new screen. A failing display (an I2C error, a
//! module unplugged) is logged once, raised as the `display` alert (the LED's error
//! pattern), retried with a growing pause, and logged and cleared when it is back; the
//! gateway never waits on it. It never decides what to show.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::hardware::HardwareConfig;
use crate::hardware::alerts::Alerts;
use crate::hardware::display::{Display, NullDisplay};
use crate::hardware::frame::Frame;
use crate::hardware::screens::{Screen, render};
use crate::hardware::select::open_display;

/// The first pause after a failed show; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often a ticking screen (a countdown) is redrawn.
pub const TICK: Duration = Duration::from_secs(1);

/// The name a failing display is raised under in [`Alerts`].
pub const ALERT: &str = "display";

/// Runs until the sender of `screens` is dropped, then blanks the display.
pub async fn run(
    mut device: Box<dyn Display>,
    mut screens: watch::Receiver<Screen>,
    clock: SharedClock,
    alerts: Arc<Alerts>,
) {
    let mut shown: Option<Frame> = None;
    let mut backoff: Option<Duration> = None;
    loop {
        let screen = screens.borrow_and_update().clone();
        let now = clock.now();
        let frame = render(&screen, now).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "cannot draw this screen");
            render(
                &Screen::Message {
                    title: "Cannot show this".into(),
                    body: err.to_string(),
                },
                now,
            )
            .unwrap_or_default()
        });
        if shown.as_ref() != Some(&frame) {
            match device.show(&frame) {
                Ok(()) => {
                    if backoff.take().is_some() {
                        alerts.clear(ALERT);
                        tracing::info!(display = %device.describe(), "display is back");
                    }
                    shown = Some(frame);
                }
                Err(err) => {
                    if backoff.is_none() {
                        alerts.raise(ALERT, format!("{}: {err}", device.describe()));
                        tracing::warn!(
                            display = %device.describe(),
                            error = %err,
                            "display failed; retrying in the background, the gateway runs on"
                        );
                    }
                    shown = None;
                    backoff = Some(backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF)));
                }
            }
        }
        let wake = match (backoff, screen.expires_at()) {
            (Some(pause), _) => Some(pause),
            (None, Some(at)) if now < at => {
                let left = Duration::try_from(at - now).unwrap_or_default();
                Some(left.min(TICK))
            }
            _ => None,
        };
        tokio::select! {
            changed = screens.changed() => {
                if changed.is_err() {
                    let _ = device.show(&Frame::new());
                    return;
                }
            }
            () = sleep(wake) => {}
        }
    }
}

async fn sleep(pause: Option<Duration>) {
    match pause {
        Some(pause) => tokio::time::sleep(pause).await,
        None => std::future::pending().await,
    }
}

/// How often [`follow`] asks what the screen should be.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Opens the display `config` asks for, unless one is `given` (logging what was found
/// and what was passed over), then keeps it showing `screen_of()`, asked every
/// [`FOLLOW_EVERY`]. A display named in the config that cannot be opened is raised in
/// `alerts`. Never returns, so it can run as one of the gateway's tasks; with no display
/// it only waits.
pub async fn follow<F>(
    config: HardwareConfig,
    given: Option<Box<dyn Display>>,
    clock: SharedClock,
    alerts: Arc<Alerts>,
    screen_of: F,
) where
    F: Fn() -> Screen + Send + 'static,
{
    let opened = match given {
        Some(device) => Ok((Ok(device), Vec::new())),
        None => tokio::task::spawn_blocking(move || open_display(&config)).await,
    };
    let device = match opened {
        Ok((Ok(device), skipped)) => {
            tracing::info!(display = %device.describe(), passed_over = ?skipped, "display");
            device
        }
        Ok((Err(err), _)) => {
            tracing::warn!(error = %err, "the configured display cannot be used; running without one");
            alerts.raise(ALERT, err.to_string());
            Box::new(NullDisplay)
        }
        Err(err) => {
            tracing::warn!(error = %err, "probing for a display failed; running without one");
            Box::new(NullDisplay)
        }
    };
    let (screens, watched) = watch::channel(screen_of());
    let refresh = async {
        loop {
            tokio::time::sleep(FOLLOW_EVERY).await;
            let next = screen_of();
            screens.send_if_modified(|shown| {
                let changed = *shown != next;
                if changed {
                    *shown = next;
                }
                changed
            });
        }
    };
    tokio::join!(run(device, watched, clock, alerts), refresh);
}
