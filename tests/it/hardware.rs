//! The display, button and LED from outside: `aisopod hardware test` off a Pi, the
//! `[hardware]` table's checks, and a gateway whose display cannot be opened.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Waits (by condition, `limit` at most) until `done` holds.
pub(crate) fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_unplugged_display_turns_the_led_to_its_error_pattern_until_it_is_back() {
    use aisopod::hardware::LedPattern;
    let board = Board::default();
    let setup = Setup::new("[hardware]\nlong_press = \"500ms\"\n");
    setup.add_owner();
    let gateway = setup.start_on(board.devices());
    let app = gateway.app.clone().unwrap();
    let led = || aisopod::app::led_pattern(&app);
    let limit = Duration::from_secs(5);
    wait_for("the status screen is drawn", limit, || {
        board.oled.written() >= 1024
    });
    assert_eq!(led(), LedPattern::Ready);

    // Unplugged, then pairing started: the countdown cannot be drawn.
    board.oled.unplugged.store(true, Ordering::SeqCst);
    board.button.long();
    wait_for("the failing display is raised", limit, || {
        !app.alerts.is_empty()
    });
    assert_eq!(app.alerts.current()[0].0, "display");
    assert_eq!(led(), LedPattern::Pairing, "a person's act is not hidden");
    gateway.advance_clock(Duration::from_secs(121));
    assert_eq!(
        led(),
        LedPattern::Error,
        "the offer is over; the fault shows"
    );
    let before = board.led.sets();
    wait_for("the LED plays the error pattern", limit, || {
        board.led.blinked_since(before)
    });
    assert_eq!(
        gateway.get("/health").status(),
        200,
        "the gateway serves on"
    );

    // Plugged back: the display is set up again, the alert clears, the LED is steady.
    let written = board.oled.written();
    board.oled.unplugged.store(false, Ordering::SeqCst);
    wait_for("the display is back", Duration::from_secs(20), || {
        app.alerts.is_empty()
    });
    assert!(
        board.oled.written() >= written + 1024,
        "the screen is redrawn"
    );
    assert_eq!(led(), LedPattern::Ready);
}

/// A command the default policy sends to a person.
const NEEDS_APPROVAL: &str = "factor 42 > factors.txt; cat factors.txt";

/// A gateway on `board` with the sandbox and an owner, and a real tool call waiting for
/// approval in the broker (`aisopod tools run` through the admin socket).
fn waiting_tool_call(
    board: &Board,
    hardware: &str,
) -> (Setup, crate::support::Gateway, std::process::Child) {
    use crate::sandbox::{SANDBOX, sandbox_toml};
    let setup = Setup::new(&format!(
        "{}\n[hardware]\n{hardware}\n",
        sandbox_toml(SANDBOX)
    ));
    setup.add_owner();
    let gateway = setup.start_on(board.devices());
    let input = serde_json::json!({ "command": NEEDS_APPROVAL }).to_string();
    let call = std::process::Command::new(crate::support::BIN)
        .arg("--config")
        .arg(&setup.config)
        .args(["tools", "run", "shell", "--json", &input])
        .env_remove("AISOPOD_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let app = gateway.app.clone().unwrap();
    wait_for(
        "the tool call waits for approval",
        Duration::from_secs(10),
        || app.approvals.waiting() == 1,
    );
    (setup, gateway, call)
}

/// The audit records made by the button: (action, outcome).
fn button_records(gateway: &crate::support::Gateway) -> Vec<(String, String)> {
    let query = aisopod::audit::Query {
        since: None,
        action: None,
        limit: None,
    };
    let records = gateway.app.as_ref().unwrap().audit().list(&query).unwrap();
    records
        .into_iter()
        .filter(|r| r.actor == "button")
        .map(|r| {
            let outcome = serde_json::to_value(r.outcome).unwrap();
            (r.action, outcome.as_str().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn with_approve_with_button_a_short_press_approves_the_tool_call_the_display_shows() {
    use aisopod::hardware::{Screen, render};
    let board = Board::default();
    let (_setup, gateway, call) = waiting_tool_call(&board, "approve_with_button = true");
    let app = gateway.app.clone().unwrap();
    // The display shows the tool and the command, as the screen draws them.
    let expected = render(
        &Screen::Approval {
            tool: "shell".into(),
            command: NEEDS_APPROVAL.into(),
        },
        aisopod::clock::Clock::now(gateway.clock.as_ref().unwrap()),
    )
    .unwrap();
    wait_for(
        "the display asks for approval",
        Duration::from_secs(5),
        || board.oled.frame() == expected,
    );
    board.button.short();
    wait_for("the press approves", Duration::from_secs(5), || {
        app.approvals.waiting() == 0
    });
    let out = call.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["result"]["stdout"], "42: 2 3 7\n", "{result}");
    assert_eq!(
        button_records(&gateway),
        [("approval.allow".to_string(), "success".to_string())]
    );
}

#[test]
fn without_approve_with_button_a_press_never_approves() {
    let board = Board::default();
    let (_setup, gateway, mut call) = waiting_tool_call(&board, "approve_with_button = false");
    let app = gateway.app.clone().unwrap();
    let written = board.oled.written();
    board.button.short();
    board.button.short();
    // The presses are handled within microseconds; give them ample time to do wrong.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(app.approvals.waiting(), 1, "still waiting for a person");
    assert!(button_records(&gateway).is_empty());
    assert_eq!(
        board.oled.written(),
        written,
        "no approval screen was drawn"
    );
    let _ = call.kill();
    let _ = call.wait();
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
    // The owner sees it on the device: the LED's error pattern, for the display named.
    let raised = app.alerts.current();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].0, "display");
    assert!(raised[0].1.contains("I2C bus 21"), "{raised:?}");
    assert_eq!(
        aisopod::app::led_pattern(app),
        aisopod::hardware::LedPattern::Error
    );
}

/// A simulated board: an SSD1306 on an I2C bus, a button and an LED, handed to the
/// gateway in place of the Pi's. Tests read back what the panel shows, press the button
/// through the gateway's own debouncer, and watch the LED.
#[derive(Debug, Clone, Default)]
pub(crate) struct Board {
    pub oled: SimulatedOled,
    pub button: SimulatedButton,
    pub led: SimulatedLed,
}

impl Board {
    /// The devices for `Setup::start_on`: the display is the crate's own SSD1306 driver
    /// talking to the simulated controller.
    pub fn devices(&self) -> aisopod::hardware::Devices {
        let display = aisopod::hardware::oled::Oled::open(self.oled.clone(), 0x3c, "simulated")
            .expect("the simulated SSD1306 answers");
        aisopod::hardware::Devices {
            display: Box::new(display),
            button: Box::new(self.button.clone()),
            led: Box::new(self.led.clone()),
        }
    }
}

/// An SSD1306 controller at 0x3C as the driver sees it over I2C: commands set the column
/// and page window, data bytes fill the display RAM in horizontal addressing order. The
/// RAM is the picture on the panel.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimulatedOled {
    ram: Arc<Mutex<Ram>>,
    /// While set, nothing answers on the bus (the module is unplugged).
    pub unplugged: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Ram {
    pages: [u8; 1024],
    columns: (u8, u8),
    page_span: (u8, u8),
    column: u8,
    page: u8,
    /// Bytes of display data written so far.
    written: usize,
}

impl Default for Ram {
    fn default() -> Ram {
        Ram {
            pages: [0; 1024],
            columns: (0, 127),
            page_span: (0, 7),
            column: 0,
            page: 0,
            written: 0,
        }
    }
}

impl Ram {
    fn commands(&mut self, mut bytes: &[u8]) {
        while let Some((&command, rest)) = bytes.split_first() {
            // Arguments each command takes (the datasheet's command table).
            let arguments = match command {
                0x21 | 0x22 | 0xA3 => 2,
                0x20 | 0x81 | 0x8D | 0xA8 | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB => 1,
                0x26 | 0x27 => 6,
                0x29 | 0x2A => 5,
                _ => 0,
            };
            let (args, next) = rest.split_at(arguments.min(rest.len()));
            match (command, args) {
                (0x21, [start, end]) => {
                    self.columns = (*start, *end);
                    self.column = *start;
                }
                (0x22, [start, end]) => {
                    self.page_span = (*start, *end);
                    self.page = *start;
                }
                _ => {}
            }
            bytes = next;
        }
    }

    fn data(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.pages[usize::from(self.page) * 128 + usize::from(self.column)] = *byte;
            self.written += 1;
            if self.column >= self.columns.1 {
                self.column = self.columns.0;
                self.page = if self.page >= self.page_span.1 {
                    self.page_span.0
                } else {
                    self.page + 1
                };
            } else {
                self.column += 1;
            }
        }
    }
}

impl SimulatedOled {
    /// What the panel shows now.
    pub fn frame(&self) -> aisopod::hardware::Frame {
        aisopod::hardware::Frame::from_pages(self.ram.lock().unwrap().pages)
    }

    /// The QR codes a reader finds on the panel now.
    pub fn codes(&self) -> Vec<String> {
        qr_codes_in_png(&aisopod::hardware::png::encode(&self.frame()).unwrap())
    }

    /// Bytes of display data the driver has sent.
    pub fn written(&self) -> usize {
        self.ram.lock().unwrap().written
    }
}

impl embedded_hal::i2c::ErrorType for SimulatedOled {
    type Error = embedded_hal::i2c::ErrorKind;
}

impl embedded_hal::i2c::I2c for SimulatedOled {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [embedded_hal::i2c::Operation<'_>],
    ) -> Result<(), Self::Error> {
        use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource, Operation};
        if address != 0x3c || self.unplugged.load(Ordering::SeqCst) {
            return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        }
        let mut ram = self.ram.lock().unwrap();
        for operation in operations {
            match operation {
                Operation::Write(bytes) => match bytes.split_first() {
                    Some((0x00, commands)) => ram.commands(commands),
                    Some((0x40, data)) => ram.data(data),
                    _ => return Err(ErrorKind::Other),
                },
                Operation::Read(buffer) => buffer.fill(0),
            }
        }
        Ok(())
    }
}

/// A push button whose contact the test moves; its edges go through the gateway's own
/// debouncer.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimulatedButton {
    edges: Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<aisopod::hardware::display::Edge>>>>,
}

impl SimulatedButton {
    /// A press held for `hold`, bouncing as a real contact does when it closes, in real
    /// time (the debouncer reads the edges' instants); returns once the release has
    /// settled.
    pub fn press(&self, hold: Duration) {
        use aisopod::hardware::display::Edge;
        let send = |pressed| {
            let edges = self.edges.lock().unwrap();
            let edges = edges.as_ref().expect("the gateway listens to the button");
            edges
                .send(Edge {
                    pressed,
                    at: Instant::now(),
                })
                .unwrap();
        };
        for pressed in [true, false, true] {
            send(pressed);
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(hold);
        send(false);
        std::thread::sleep(Duration::from_millis(100));
    }

    pub fn short(&self) {
        self.press(Duration::from_millis(120));
    }

    /// Held past `[hardware] long_press`, which tests set to its least, 500 ms.
    pub fn long(&self) {
        self.press(Duration::from_millis(650));
    }
}

impl aisopod::hardware::Button for SimulatedButton {
    fn describe(&self) -> String {
        "simulated button".into()
    }

    fn listen(
        &mut self,
        edges: tokio::sync::mpsc::UnboundedSender<aisopod::hardware::display::Edge>,
    ) -> Result<(), aisopod::hardware::HardwareError> {
        *self.edges.lock().unwrap() = Some(edges);
        Ok(())
    }
}

/// An LED that remembers each change.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimulatedLed {
    changes: Arc<Mutex<Vec<bool>>>,
}

impl SimulatedLed {
    /// How many times it was set so far.
    pub fn sets(&self) -> usize {
        self.changes.lock().unwrap().len()
    }

    /// Whether it was both lit and dark among the sets after the first `since`.
    pub fn blinked_since(&self, since: usize) -> bool {
        let changes = self.changes.lock().unwrap();
        let seen = changes.get(since..).unwrap_or_default();
        seen.contains(&true) && seen.contains(&false)
    }
}

impl aisopod::hardware::Led for SimulatedLed {
    fn describe(&self) -> String {
        "simulated LED".into()
    }

    fn set(&mut self, on: bool) -> Result<(), aisopod::hardware::HardwareError> {
        self.changes.lock().unwrap().push(on);
        Ok(())
    }
}

/// A gateway bound to every address advertises `_https._tcp` for `HOSTNAME.local` at the
/// port it really listens on (the configured one is 0), and withdraws it when it stops
/// (SIGTERM, as systemd stops it).
#[test]
fn the_gateway_is_found_over_mdns_at_its_port_and_withdrawn_when_it_stops() {
    use mdns_sd::{ServiceDaemon, ServiceEvent};
    let setup = Setup::new("");
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let everywhere = text.replace("bind = \"127.0.0.1:0\"", "bind = \"0.0.0.0:0\"");
    assert_ne!(text, everywhere);
    std::fs::write(&setup.config, everywhere).unwrap();
    let mut gateway = setup.start_process();
    let port = gateway.addr().port();
    let host = format!(
        "{}.local.",
        nix::unistd::gethostname().unwrap().to_str().unwrap()
    );
    let browser = ServiceDaemon::new().unwrap();
    let events = browser.browse("_https._tcp.local.").unwrap();
    let next = |wanted: &dyn Fn(&ServiceEvent) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(event) = events.recv_timeout(Duration::from_millis(200))
                && wanted(&event)
            {
                return Some(event);
            }
        }
        None
    };
    let Some(ServiceEvent::ServiceResolved(found)) =
        next(&|event| matches!(event, ServiceEvent::ServiceResolved(s) if s.port == port))
    else {
        let _ = browser.shutdown();
        if gateway.log_text().contains("advertised over mDNS") {
            crate::sandbox::skipped("no multicast answer here (multicast unavailable)");
            return;
        }
        panic!("not advertised: {}", gateway.log_text());
    };
    assert_eq!(found.host, host);
    assert!(
        found
            .addresses
            .iter()
            .all(|a| !a.to_ip_addr().is_loopback()),
        "{found:?}"
    );
    let fullname = found.fullname.clone();
    gateway.stop();
    let removed =
        next(&|event| matches!(event, ServiceEvent::ServiceRemoved(_, name) if *name == fullname));
    let _ = browser.shutdown();
    assert!(removed.is_some(), "withdrawn on shutdown");
}
