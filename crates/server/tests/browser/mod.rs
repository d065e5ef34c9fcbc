//! A headless Chromium driven over WebDriver, for tests that look at a page
//! the way a person does: `chromedriver` on a free loopback port, one
//! Chromium session with a fresh profile, screenshots into the target
//! directory. Dropping a [`Browser`] kills the driver and every process it
//! started, also when a test panics.
//!
//! The machine has no internet: the flags below keep Chromium from trying
//! (updates, sync, QUIC probes), which would only slow it down.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long chromedriver and Chromium get to start on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Browser::wait_for`] polls before it gives up.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(20);

/// `$NAME` if set, else `default`; the program must exist.
fn program(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-test-deps.sh, which installs Debian's chromium \
         and chromium-driver (or set {env} to where the program is)",
        path.display()
    );
    path
}

/// Where the screenshots go: `$CARGO_TARGET_DIR`, else `target/` at the
/// workspace root.
pub fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// chromedriver in its own process group, so that killing the group on
/// drop also ends the Chromium it started.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    fn start(dir: &Path) -> Driver {
        let chromedriver = program("SANDPORT_CHROMEDRIVER", CHROMEDRIVER);
        let log = dir.join("chromedriver.log");
        // The port is free when we ask; should another process take it
        // before chromedriver binds, chromedriver exits and we try another.
        for _ in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(dir.join("chromedriver.stderr")).unwrap())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
            let mut driver = Driver {
                child,
                port,
                log: log.clone(),
            };
            if driver.listening() {
                return driver;
            }
            eprintln!("chromedriver exited at start (port {port} taken?); trying another port");
        }
        panic!(
            "chromedriver exited at start five times; see {}",
            log.display()
        );
    }

    /// Waits until the driver accepts connections; false if it exited.
    fn listening(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {} within {START_TIMEOUT:?}; its log: {}",
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "chromedriver's own log, in the test's temporary directory"
    )]
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut start = text.len().saturating_sub(4000);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

/// Held while a driver starts and its session opens.
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One Chromium window.
pub struct Browser {
    client: Option<Client>,
    // Dropped after the client: the driver, then the profile it used.
    _driver: Driver,
    _dir: tempfile::TempDir,
}

impl Browser {
    /// A headless Chromium whose page is `width` x `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        Browser::start_with(width, height, &[]).await
    }

    /// [`Browser::start`] with more command-line flags for Chromium.
    pub async fn start_with(width: u32, height: u32, flags: &[&str]) -> Browser {
        let chromium = program("SANDPORT_CHROMIUM", CHROMIUM);
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).unwrap();
        // One start at a time in this process: tests running side by side
        // pick free ports at once, and one's chromedriver could take the
        // port another had just picked (and found listening).
        let _one_start = STARTING.lock().await;
        let driver = Driver::start(dir.path());
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend(flags.iter().map(|flag| (*flag).to_owned()));
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{}", driver.port);
        let client = tokio::time::timeout(
            START_TIMEOUT,
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&url),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "Chromium did not start within {START_TIMEOUT:?}; chromedriver's log: {}",
                driver.log_tail()
            )
        })
        .unwrap_or_else(|e| {
            panic!(
                "cannot open a Chromium session: {e}; chromedriver's log: {}",
                driver.log_tail()
            )
        });
        let browser = Browser {
            client: Some(client),
            _driver: driver,
            _dir: dir,
        };
        browser.resize(width, height).await;
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Sizes the window so that the page (the viewport) is `width` x
    /// `height`, whatever the window's frame takes.
    pub async fn resize(&self, width: u32, height: u32) {
        let client = self.client();
        client.set_window_size(width, height).await.unwrap();
        let (inner_w, inner_h): (u32, u32) = self
            .js("return [window.innerWidth, window.innerHeight]")
            .await;
        if (inner_w, inner_h) != (width, height) {
            let (outer_w, outer_h) = client.get_window_size().await.unwrap();
            let w = u32::try_from(outer_w).unwrap() + width - inner_w.min(width);
            let h = u32::try_from(outer_h).unwrap() + height - inner_h.min(height);
            client.set_window_size(w, h).await.unwrap();
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap();
    }

    /// Runs `script` (a function body: `return ...`) and reads its result.
    pub async fn js<T: DeserializeOwned>(&self, script: &str) -> T {
        let value = self.client().execute(script, Vec::new()).await.unwrap();
        serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{script} returned {value}: {e}"))
    }

    /// Polls the JavaScript expression `condition` until it is truthy, and
    /// returns how long that took; panics after [`WAIT_TIMEOUT`], naming
    /// `what` and the page's `probe` (an expression) at that moment.
    pub async fn wait_for(&self, what: &str, condition: &str, probe: &str) -> Duration {
        let script = format!("return Boolean({condition})");
        let started = Instant::now();
        loop {
            if self.js::<bool>(&script).await {
                return started.elapsed();
            }
            if started.elapsed() > WAIT_TIMEOUT {
                let seen: Value = self.js(&format!("return {probe}")).await;
                panic!("waited {WAIT_TIMEOUT:?} for {what}; the page shows {seen}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let element = self.client().find(Locator::Css(css)).await.unwrap();
        element.click().await.unwrap();
    }

    /// Saves what the window shows as `<target dir>/name`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client().screenshot().await.unwrap();
        let path = target_dir().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session, so chromedriver closes Chromium itself.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}
