//! Start-up as a library function: [`run`] binds, opens the state, serves until told to
//! stop, and drains.
//!
//! The CLI's `gateway start` and the integration tests call the same function; tests
//! hand in listeners already bound to port 0 and a clock they move by hand, so they get
//! the address and control time without parsing logs or sleeping. This module wires the
//! parts together in order (listeners, state, admin socket, redirect listener, claim
//! code, systemd readiness, serve, drain); it never handles a request itself, and it
//! never installs signal handlers or logging: the caller decides when to stop and where
//! logs go.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};

use crate::admin;
use crate::audit::AuditEvent;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::fsutil::ensure_private_dir;
use crate::server::state::App;
use crate::server::{self, ConnectionLimits};
use crate::tls::NameSource;

/// Why the gateway could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr} ({hint})")]
    Listen {
        addr: SocketAddr,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the bound address")]
    Address(#[source] std::io::Error),
    #[error("cannot {op} the admin socket {}", path.display())]
    AdminSocket {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error(transparent)]
    Open(#[from] crate::Error),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error("the start-up task ended abnormally")]
    StartUp(#[source] tokio::task::JoinError),
    #[error("strict mode refuses to start: {0} (or set [security] mode = \"local\")")]
    ExposedUpstream(crate::gateway::providers::Exposure),
}

/// The sockets the gateway serves on. A listener left `None` is bound from the config
/// (`[server] bind`, `[server] http_redirect_bind`); one handed in is used as it is, so
/// a caller that bound port 0 knows the address before the gateway starts.
#[derive(Debug, Default)]
pub struct Listeners {
    pub api: Option<TcpListener>,
    /// Used only when the config asks for a redirect listener.
    pub redirect: Option<TcpListener>,
}

/// Called once with the serving gateway.
pub type OnReady = Box<dyn FnOnce(&Ready) + Send>;

/// What a caller may inject besides the config and the listeners.
pub struct Options {
    pub clock: SharedClock,
    /// The names the self-signed certificate carries; the host's own when `None`.
    pub names: Option<NameSource>,
    /// The binary that runs sandboxed code; this process's own when `None`.
    pub sandbox_helper: Option<PathBuf>,
    /// Told once, when the gateway serves.
    pub on_ready: Option<OnReady>,
    /// Whether to tell systemd (`NOTIFY_SOCKET`) about readiness and the watchdog: only
    /// the process's own gateway may, never one a test or a bench runs inside itself.
    pub notify_systemd: bool,
    /// The display, button and LED to use instead of probing `[hardware]` for them.
    pub hardware: Option<crate::hardware::Devices>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            clock: Arc::new(SystemClock),
            names: None,
            sandbox_helper: None,
            on_ready: None,
            notify_systemd: true,
            hardware: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("clock", &self.clock)
            .field("sandbox_helper", &self.sandbox_helper)
            .field("on_ready", &self.on_ready.is_some())
            .field("notify_systemd", &self.notify_systemd)
            .field("hardware", &self.hardware)
            .finish_non_exhaustive()
    }
}

/// A serving gateway, as [`Options::on_ready`] sees it.
#[derive(Debug)]
pub struct Ready {
    pub app: Arc<App>,
    /// The address the API listener is bound to.
    pub addr: SocketAddr,
    /// A URL a local client can reach it at (the unspecified address becomes loopback).
    pub url: String,
}

/// Warns about, and in strict mode refuses, a loopback LLM upstream the LAN can reach.
async fn check_local_upstreams(config: &Config) -> Result<(), AppError> {
    use crate::gateway::providers::{exposed_local_upstreams, local_addresses};
    let wait = std::time::Duration::from_millis(300);
    let exposed = exposed_local_upstreams(&config.providers, &local_addresses(), wait).await;
    for exposure in &exposed {
        tracing::warn!("{exposure}");
    }
    match exposed.into_iter().next() {
        Some(exposure) if config.security.mode == crate::config::SecurityMode::Strict => {
            Err(AppError::ExposedUpstream(exposure))
        }
        _ => Ok(()),
    }
}

/// Runs the gateway on the system clock until `shutdown` completes, then drains.
pub async fn run<S>(config: Config, listeners: Listeners, shutdown: S) -> Result<(), AppError>
where
    S: Future<Output = ()> + Send + 'static,
{
    run_with(config, listeners, Options::default(), shutdown).await
}

/// [`run`] with an injected clock, certificate names and readiness callback.
pub async fn run_with<S>(
    config: Config,
    listeners: Listeners,
    options: Options,
    shutdown: S,
) -> Result<(), AppError>
where
    S: Future<Output = ()> + Send + 'static,
{
    let bind = config.server.bind;
    let redirect_bind = config.server.http_redirect_bind;
    let runtime_dir = config.storage.runtime_dir.clone();
    let socket_path = admin::socket_path(&config);
    let listener = match listeners.api {
        Some(listener) => listener,
        None => TcpListener::bind(bind)
            .await
            .map_err(|source| AppError::Listen {
                addr: bind,
                hint: "set [server] bind to a free address, or port 0 to pick one",
                source,
            })?,
    };
    check_local_upstreams(&config).await?;
    let Options {
        clock,
        names,
        sandbox_helper,
        on_ready,
        notify_systemd: systemd,
        hardware,
    } = options;
    // Password strength is estimated in a child of this binary (see auth::strength).
    let strength_helper = sandbox_helper
        .clone()
        .or_else(|| std::env::current_exe().ok());
    let app = Arc::new(
        tokio::task::spawn_blocking(move || {
            App::open_with_helper(config, clock, names, sandbox_helper)
        })
        .await
        .map_err(AppError::StartUp)??,
    );
    if let Some(helper) = strength_helper {
        app.services.auth.accounts.passwords().estimate_in(helper);
    }
    let addr = listener.local_addr().map_err(AppError::Address)?;
    let _ = app.listening.set(addr);
    let scheme = app.config().scheme();

    let admin_listener = bind_admin_socket(&runtime_dir, &socket_path)?;
    app.tasks
        .spawn("admin-socket", admin::listen(app.clone(), admin_listener));
    app.spawn_background();

    let (stop_redirect, redirect_stopped) = tokio::sync::watch::channel(false);
    let redirect = match redirect_bind {
        Some(redirect_bind) => {
            let redirect_listener =
                match listeners.redirect {
                    Some(listener) => listener,
                    None => TcpListener::bind(redirect_bind).await.map_err(|source| {
                        AppError::Listen {
                            addr: redirect_bind,
                            hint: "[server] http_redirect_bind",
                            source,
                        }
                    })?,
                };
            let mut stopped = redirect_stopped.clone();
            let limits = ConnectionLimits::from_app(&app);
            let public_url = app.config().server.public_url.clone();
            tracing::info!(addr = %redirect_listener.local_addr().unwrap_or(redirect_bind), "redirecting plain HTTP to HTTPS");
            Some(tokio::spawn(server::serve_redirect(
                redirect_listener,
                addr.port(),
                public_url,
                limits,
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            )))
        }
        None => None,
    };

    let shown = reachable(addr);
    let url = format!("{scheme}://{shown}");
    app.audit().record(
        AuditEvent::new("gateway.start")
            .target(url.clone())
            .details(serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(),
            })),
    )?;
    let fingerprint = app
        .tls
        .as_ref()
        .and_then(|tls| tls.summary().ca.map(|ca| ca.sha256));
    tracing::info!(
        url = %url,
        ca_sha256 = fingerprint.as_deref().unwrap_or("-"),
        admin_socket = %socket_path.display(),
        "aisopod gateway listening"
    );
    offer_claim_code(&app, &url);
    let (display, button, led) = match hardware {
        Some(given) => (Some(given.display), Some(given.button), Some(given.led)),
        None => (None, None, None),
    };
    let announcer = start_discovery(&app, addr);
    start_display(&app, &url, display);
    start_button(&app, button);
    start_led(&app, led);
    if let Some(on_ready) = on_ready {
        on_ready(&Ready {
            app: app.clone(),
            addr,
            url,
        });
    }
    if systemd {
        notify_systemd(&app);
    }

    let router = server::router(app.clone());
    let tls = app.tls.as_ref().map(|tls| tls.server_config());
    let limits = ConnectionLimits::from_app(&app);
    server::serve(listener, router, tls, limits, shutdown).await;
    let _ = stop_redirect.send(true);
    if let Some(redirect) = redirect {
        let _ = redirect.await;
    }
    if systemd {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    }
    if let Some(announcer) = announcer {
        let _ = tokio::task::spawn_blocking(move || announcer.stop()).await;
    }
    app.tasks.abort_all();
    // The last answers' counts; the stop's audit record then syncs them with the rest.
    if let Err(err) = app.gateway.usage.flush() {
        tracing::error!(error = %err, "writing the last usage counts failed");
    }
    app.audit().record_or_log(AuditEvent::new("gateway.stop"));
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("aisopod gateway stopped");
    Ok(())
}

/// Binds the admin socket (0600) in a private runtime directory, replacing a stale one.
fn bind_admin_socket(
    runtime_dir: &std::path::Path,
    socket_path: &std::path::Path,
) -> Result<UnixListener, AppError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |op| {
        move |source| AppError::AdminSocket {
            op,
            path: socket_path.to_path_buf(),
            source,
        }
    };
    ensure_private_dir(runtime_dir)?;
    let _ = std::fs::remove_file(socket_path);
    let listener = UnixListener::bind(socket_path).map_err(failed("create"))?;
    std::fs::set_permissions(socket_path, std::fs::Permissions::from_mode(0o600))
        .map_err(failed("restrict"))?;
    Ok(listener)
}

/// With no account yet, starts a one-time claim code. The code is a secret: shown on an
/// interactive console, never logged.
fn offer_claim_code(app: &App, url: &str) {
    let auth = &app.services.auth;
    if !(auth.has_accounts() && auth.accounts.is_empty()) {
        return;
    }
    let code = auth.claim.start();
    let minutes = app.config().auth.claim_code_ttl.as_secs() / 60;
    app.audit()
        .record_or_log(AuditEvent::new("auth.claim_code_created"));
    if std::io::stderr().is_terminal() {
        eprintln!(
            "\n  No accounts yet. Claim this gateway within {minutes} minutes with the code\n\n      {code}\n\n  \
             at {url}/setup/claim, or create the owner here: aisopod user add --admin NAME\n"
        );
    } else {
        tracing::warn!(
            "no accounts yet: `aisopod auth claim-code` on this device shows the one-time claim code \
             (valid {minutes} minutes), or create the owner with `aisopod user add --admin NAME`"
        );
    }
}

/// Advertises the gateway over mDNS at the address it listens on, unless `[pairing]
/// mdns = false` or nobody on the network could reach it. A failure to start is raised
/// as an alert (the LED's error pattern): phones then cannot resolve `HOSTNAME.local`.
fn start_discovery(app: &App, listening: SocketAddr) -> Option<crate::discovery::Announcer> {
    use crate::discovery::{Announcer, advert};
    if !app.config().pairing.mdns {
        return None;
    }
    let host = nix::unistd::gethostname().map_or_else(
        |_| String::new(),
        |name| name.to_string_lossy().into_owned(),
    );
    let advert = match advert(&host, listening, app.tls.is_some()) {
        Ok(advert) => advert,
        Err(why) => {
            tracing::info!(reason = why, "not advertised over mDNS");
            return None;
        }
    };
    match Announcer::start(&advert) {
        Ok(announcer) => {
            tracing::info!(service = advert.service, host = %advert.host, port = advert.port, "advertised over mDNS");
            Some(announcer)
        }
        Err(err) => {
            tracing::warn!(error = %err, "mDNS advertising failed; phones cannot find HOSTNAME.local");
            app.alerts.raise("mdns", err.to_string());
            None
        }
    }
}

/// The device's display (`given`, or the one `[hardware]` names), kept showing
/// [`display_screen`]. The display task never ends and never blocks start.
fn start_display(app: &Arc<App>, url: &str, given: Option<Box<dyn crate::hardware::Display>>) {
    use crate::hardware::{Screen, task::follow};
    // What a phone can open: the public origin, else HOSTNAME.local with the port, never
    // the loopback address `url` names for a gateway bound to every address.
    let url = admin::pairing::default_host(app).map_or_else(
        |_| url.to_string(),
        |host| format!("{}://{host}", app.config().scheme()),
    );
    let weak = Arc::downgrade(app);
    let host = nix::unistd::gethostname().map_or_else(
        |_| "aisopod".to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let screen = move || match weak.upgrade() {
        None => Screen::Blank,
        Some(watched) => display_screen(&watched, &url, &host),
    };
    let (config, clock) = (app.config().hardware.clone(), app.services.clock.clone());
    let alerts = app.alerts.clone();
    app.tasks
        .spawn("display", follow(config, given, clock, alerts, screen));
}

/// What the display shows now: pairing first (the open offer's QR, or the phone a short
/// press would confirm), then with `[hardware] approve_with_button` the tool call a short
/// press would approve, then the claim code and a QR of the setup page while no account
/// exists, else the status with the paired-device count. `url` is where the gateway
/// answers, `host` the machine's name.
pub fn display_screen(app: &App, url: &str, host: &str) -> crate::hardware::Screen {
    use crate::hardware::{Screen, qr::uppercase_origin};
    use crate::pairing::Showing;
    // An expiry that cannot be represented counts as past, so no secret stays up.
    let at = |unix| {
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    match app.pairing.showing() {
        Some(Showing::Offer { payload, expires }) => return pairing_screen(payload, expires),
        Some(Showing::Confirm {
            device,
            code,
            expires,
            ..
        }) => {
            return Screen::PairingConfirm {
                device,
                code,
                expires_at: at(expires),
            };
        }
        Some(Showing::SeveralWaiting(count)) => {
            return Screen::Message {
                title: "Phones waiting".into(),
                body: format!("{count} phones wait: confirm each by its code in the dashboard"),
            };
        }
        None => {}
    }
    if app.config().hardware.approve_with_button {
        match button_approval(app) {
            Some(ButtonApproval::One(request)) => {
                return Screen::Approval {
                    tool: request.tool.clone(),
                    command: request.input.summary.clone(),
                };
            }
            Some(ButtonApproval::Several(count)) => {
                return Screen::Message {
                    title: "Approvals waiting".into(),
                    body: format!("{count} tool calls wait: answer each in the app"),
                };
            }
            None => {}
        }
    }
    match app.services.auth.claim.current() {
        Some(code) => Screen::Claim {
            code: crate::secret::Secret::new(code),
            setup_url: uppercase_origin(&format!("{url}/setup/claim")),
        },
        None => Screen::Status {
            url: app
                .config()
                .server
                .public_url
                .clone()
                .unwrap_or_else(|| url.to_string()),
            address: format!("{host}.local"),
            devices: app.services.auth.paired.list().ok().map(|d| d.len()),
        },
    }
}

/// Who answers a tool approval with the button: whoever stands at the device, which is
/// the owner's physical presence, so every request is theirs to answer.
fn button_responder() -> crate::gateway::approval::Responder {
    crate::gateway::approval::Responder {
        actor: "button".into(),
        username: String::new(),
        admin: true,
    }
}

/// The tool approvals the display offers to the button.
enum ButtonApproval {
    /// Exactly one waits: the display shows it, and a short press approves it.
    One(Arc<crate::gateway::approval::ApprovalRequest>),
    /// Several wait: the display says so and a press approves none, since the person
    /// could not tell which one it would be.
    Several(usize),
}

fn button_approval(app: &App) -> Option<ButtonApproval> {
    let mut waiting = app.approvals.pending_for(&button_responder());
    match waiting.len() {
        0 => None,
        1 => waiting.pop().map(ButtonApproval::One),
        count => Some(ButtonApproval::Several(count)),
    }
}

/// An open offer's screen: its QR and the countdown to `expires` (unix seconds). The
/// display and `pair start --png` both draw this.
pub fn pairing_screen(payload: crate::secret::Secret, expires: i64) -> crate::hardware::Screen {
    crate::hardware::Screen::Pairing {
        payload,
        code: String::new(),
        // An expiry that cannot be represented counts as past, so no secret stays up.
        expires_at: time::OffsetDateTime::from_unix_timestamp(expires)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    }
}

/// The button (`given`, or the one `[hardware]` names), when there is one: its presses
/// go to [`follow_button`]. One that is there but cannot be used is raised as an alert.
fn start_button(app: &Arc<App>, given: Option<Box<dyn crate::hardware::Button>>) {
    use crate::hardware::{button, select::open_button};
    let config = &app.config().hardware;
    let device = match given {
        Some(device) => device,
        None => match open_button(config) {
            (_, Some(why)) => {
                tracing::info!(reason = %why, "no button");
                return;
            }
            (device, None) => device,
        },
    };
    match button::spawn(device, config.debounce, config.long_press) {
        Ok(presses) => app
            .tasks
            .spawn("button", follow_button(Arc::downgrade(app), presses)),
        Err(err) => {
            tracing::warn!(error = %err, "the button cannot be used; running without it");
            app.alerts.raise("button", err.to_string());
        }
    }
}

/// Starts the LED (`given`, or the one `[hardware]` names), when there is one, showing
/// [`led_pattern`] as it changes.
fn start_led(app: &Arc<App>, given: Option<Box<dyn crate::hardware::Led>>) {
    use crate::hardware::{LedPattern, led, select::open_led};
    let device = match given {
        Some(device) => device,
        None => match open_led(&app.config().hardware) {
            (_, Some(why)) => {
                tracing::info!(reason = %why, "no LED");
                return;
            }
            (device, None) => device,
        },
    };
    let (patterns, shown) = tokio::sync::watch::channel(led_pattern(app));
    app.tasks.spawn("led", led::run(device, shown));
    let weak = Arc::downgrade(app);
    app.tasks.spawn("led-state", async move {
        // Each second, like the display: the state the pattern reads has no change events.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else {
                let _ = patterns.send(LedPattern::Off);
                return;
            };
            patterns.send_if_modified(|current| {
                let next = led_pattern(&app);
                std::mem::replace(current, next) != next
            });
        }
    });
}

/// What the LED says now: a tool call waiting for approval first (a person should act),
/// then an open pairing offer or a phone waiting for confirmation (both are brief and
/// were asked for), then an error while an alert is raised or the store fails (it stays
/// until fixed, so it must not hide what a person is doing), else ready.
pub fn led_pattern(app: &App) -> crate::hardware::LedPattern {
    use crate::hardware::LedPattern;
    if app.approvals.waiting() > 0 {
        LedPattern::ApprovalWaiting
    } else if app.pairing.showing().is_some() {
        LedPattern::Pairing
    } else if !app.alerts.is_empty() || app.services.store.check().is_err() {
        LedPattern::Error
    } else {
        LedPattern::Ready
    }
}

/// Acts on button presses, as the admin commands do and audited the same way with the
/// actor `button`: a long press opens a pairing offer with the default lifetime; a short
/// press confirms the claim the display names, else (with `approve_with_button`)
/// approves the tool call it shows, and does nothing when it names neither. A button
/// that goes away leaves the gateway serving.
pub async fn follow_button(
    app: std::sync::Weak<App>,
    mut presses: tokio::sync::mpsc::UnboundedReceiver<crate::hardware::ButtonEvent>,
) {
    use crate::admin::protocol::AdminRequest;
    use crate::hardware::ButtonEvent;
    use crate::pairing::Showing;
    while let Some(press) = presses.recv().await {
        let Some(app) = app.upgrade() else { return };
        let request = match press {
            ButtonEvent::Long => AdminRequest::PairStart {
                scopes: crate::auth::scopes::Scopes::none(),
                ttl: None,
                host: None,
                owner: None,
                replace: false,
            },
            ButtonEvent::Short => match app.pairing.showing() {
                Some(Showing::Confirm { id, .. }) => AdminRequest::PairConfirm { id },
                Some(_) => continue,
                None => {
                    approve_shown(&app);
                    continue;
                }
            },
        };
        if let Err(err) = admin::pairing::live(&app, "button", request) {
            tracing::warn!(error = %err, "the button press did nothing");
        }
    }
    tracing::warn!("the button stopped reporting presses; the gateway runs on");
    std::future::pending::<()>().await;
}

/// With `[hardware] approve_with_button`, approves the one tool call the display shows,
/// for exactly the input it shows (audited by the broker with the actor `button`).
/// Without the setting, or with none or several waiting, a press approves nothing.
fn approve_shown(app: &App) {
    if !app.config().hardware.approve_with_button {
        return;
    }
    let Some(ButtonApproval::One(request)) = button_approval(app) else {
        return;
    };
    let answered = app.approvals.respond(
        app.audit(),
        &request.id,
        &button_responder(),
        true,
        false,
        Some(&request.input_hash),
    );
    if let Err(err) = answered {
        tracing::warn!(error = %err, "the button press approved nothing");
    }
}

/// An address a local client can connect to: the unspecified address becomes loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

/// Tells systemd the gateway is ready and, when a watchdog is configured, pings it
/// while readiness holds (a wedged gateway is then restarted). Without `NOTIFY_SOCKET`
/// (not under systemd) this does nothing.
fn notify_systemd(app: &Arc<App>) {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let period = Duration::from_micros(usec / 2);
        let watched = app.clone();
        app.tasks.spawn("watchdog", async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let probe = watched.clone();
                if let Ok((true, _)) = tokio::task::spawn_blocking(move || probe.readiness()).await
                {
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::audit::Query;
    use crate::clock::ManualClock;

    fn config_for(dir: &std::path::Path, bind: &str) -> Config {
        crate::config::testing::local_gateway(
            &dir.join("data"),
            &format!(
                "[server]\nbind = \"{bind}\"\nshutdown_timeout = \"2s\"\n[tools.sandbox]\nenabled = false"
            ),
        )
    }

    fn actions_at(app: &App, action: &str) -> Vec<String> {
        app.audit()
            .list(&Query {
                action: Some(action.into()),
                ..Query::default()
            })
            .unwrap()
            .into_iter()
            .map(|record| record.time)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handed_in_listener_is_served_on_the_injected_clock_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_for(dir.path(), "127.0.0.1:0");
        let socket = admin::socket_path(&config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let start = time::macros::datetime!(2030-01-01 00:00 UTC);
        let (ready, serving) = tokio::sync::oneshot::channel();
        let options = Options {
            clock: Arc::new(ManualClock::new(start)),
            on_ready: Some(Box::new(move |r: &Ready| {
                let _ = ready.send((r.app.clone(), r.url.clone()));
            })),
            notify_systemd: false,
            ..Options::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listeners = Listeners {
            api: Some(listener),
            redirect: None,
        };
        let running = tokio::spawn(run_with(config, listeners, options, async move {
            let _ = stopped.await;
        }));
        let (app, url) = serving.await.unwrap();
        assert_eq!(url, format!("http://{addr}"));
        let health = reqwest::get(format!("{url}/health")).await.unwrap();
        assert_eq!(health.status(), 200);
        assert!(socket.exists(), "the admin socket is bound while serving");
        assert_eq!(
            actions_at(&app, "gateway.start"),
            ["2030-01-01T00:00:00Z"],
            "start-up is recorded on the injected clock"
        );

        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(actions_at(&app, "gateway.stop"), ["2030-01-01T00:00:00Z"]);
        assert!(!socket.exists(), "the admin socket is removed at the end");
        assert!(
            reqwest::get(format!("{url}/health")).await.is_err(),
            "nothing answers after shutdown"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_taken_address_is_refused_naming_the_key_and_the_gateway_starts_once_it_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let config = config_for(dir.path(), &addr.to_string());
        let err = run(config, Listeners::default(), std::future::pending())
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Listen { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot listen on {addr} (set [server] bind to a free address, or port 0 to pick one)"
            )
        );
        assert!(
            !dir.path().join("data").exists(),
            "nothing is created before the address is bound"
        );

        // Once the address is free, the same config starts and serves.
        drop(taken);
        let (ready, serving) = tokio::sync::oneshot::channel();
        let options = Options {
            on_ready: Some(Box::new(move |r: &Ready| {
                let _ = ready.send(r.url.clone());
            })),
            notify_systemd: false,
            ..Options::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = config_for(dir.path(), &addr.to_string());
        let running = tokio::spawn(run_with(
            config,
            Listeners::default(),
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        let url = serving.await.unwrap();
        assert_eq!(url, format!("http://{addr}"));
        assert_eq!(
            reqwest::get(format!("{url}/health"))
                .await
                .unwrap()
                .status(),
            200
        );
        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
    }
}
