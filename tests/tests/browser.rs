//! The operations page in a real browser: Debian's headless Chromium driven over
//! WebDriver (fantoccini → chromedriver) against the real `hostbridge serve` on the
//! embedded default (in-process data and training on the sample bars), as a person
//! would use it: the page loads clean, a training started from the form is watched to
//! the end, a second one is cancelled through the confirmation dialog, a bad field
//! shows the API's error beside it, and a keyed gateway shows nothing but the prompt
//! until the key is given. A screenshot of the page mid-training is written to
//! `target/browser-test/operations-page.png` (the README's picture is a copy).
//!
//! Without chromium and chromedriver the tests print why and pass as skipped; CI sets
//! `CI_REQUIRE_BROWSER=1` so they fail there instead. Every wait is bounded and names
//! what it waited for; nothing sleeps in place of a check.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hostbridge_tests::browser::{self, Chromedriver, Tools};
use hostbridge_tests::process::{Service, arg};
use hostbridge_tests::stack::{get, hourly_strategy, sim, store_with_hourly_sample};
use serde_json::{Value, json};

/// The viewport, and so the screenshot: the size the README's picture is shown at.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;
/// A training short enough for the test and long enough to watch: its progress and
/// curve are read several times while it runs (a few seconds on two shared cores).
const SHORT: &str = "browser_short";
const SHORT_EPOCHS: u32 = 40;
/// A training that would run for hours: it is cancelled.
const LONG: &str = "browser_long";
const LONG_EPOCHS: u32 = 10_000;
/// The screenshot is taken once the running training's loss curve has this many points.
const SCREENSHOT_AT: u64 = 8;
/// The key of the keyed gateway (at least 8 characters, as the gateway requires).
const KEY: &str = "browser-test-key-7c1f";

/// One browser at a time: two Chromiums and two trainings on two shared cores would
/// make every bounded wait a guess.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `target/browser-test/`: the screenshot and chromedriver's logs.
fn output_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("browser-test");
    std::fs::create_dir_all(&dir).expect("create target/browser-test");
    dir
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The browser, or `None` after printing why not (a failure under CI_REQUIRE_BROWSER).
fn tools() -> Option<Tools> {
    match browser::find_tools() {
        Ok(tools) => Some(tools),
        Err(reason) => {
            browser::skip_or_fail(&reason);
            None
        }
    }
}

/// `hostbridge serve` on 127.0.0.1 port 0, the embedded default, over a store with the
/// sample AAPL hourly bars and a strategies directory holding the two test trainings.
/// Its in-process data service talks to the IB Gateway simulator: without a TWS peer it
/// would rightly report itself down.
struct Gateway {
    service: Service,
    _ib: Service,
    _store: tempfile::TempDir,
    _models: tempfile::TempDir,
    _strategies: tempfile::TempDir,
}

impl Gateway {
    fn start(env: &[(&str, &str)]) -> Self {
        let store = store_with_hourly_sample();
        let models = tempfile::tempdir().expect("models dir");
        let strategies = tempfile::tempdir().expect("strategies dir");
        for (name, epochs) in [(SHORT, SHORT_EPOCHS), (LONG, LONG_EPOCHS)] {
            let yaml =
                hourly_strategy(epochs).replace("name: rsi_macd_mlp ", &format!("name: {name} "));
            std::fs::write(strategies.path().join(format!("{name}.yaml")), yaml)
                .expect("write strategy");
        }
        let ib = sim("0s");
        let service = Service::start(
            "hostbridge",
            &[
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--data-dir",
                arg(store.path()),
                "--models-dir",
                arg(models.path()),
                "--strategies-dir",
                arg(strategies.path()),
                "--ib-address",
                ib.addr(),
            ],
            env,
        );
        Self {
            service,
            _ib: ib,
            _store: store,
            _models: models,
            _strategies: strategies,
        }
    }

    fn url(&self) -> String {
        self.service.url()
    }

    /// `GET /api/v1/...` with the key when given → (status, body).
    async fn api(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.url()));
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        let response = request.send().await.expect("GET the gateway");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// How many operations the gateway knows.
    async fn operation_count(&self) -> u64 {
        let (status, body) = get(&format!("{}/api/v1/operations?limit=1", self.url())).await;
        assert_eq!(status, 200, "{body}");
        body["total_count"].as_u64().expect("total_count")
    }
}

/// A Chromium session on the page, with the console collected as it goes.
struct Page {
    client: Client,
    driver: Chromedriver,
    session: String,
    base: String,
    /// Every console entry read so far (chromedriver hands each out once).
    console: Vec<Value>,
}

impl Page {
    /// Starts chromedriver and a headless Chromium whose viewport is WIDTH×HEIGHT.
    async fn open(tools: &Tools, base: &str, name: &str) -> Self {
        let log = output_dir().join(format!("chromedriver-{name}.log"));
        let driver = Chromedriver::start(tools, &log)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(driver.capabilities(WIDTH, HEIGHT))
            .connect(driver.url())
            .await
            .unwrap_or_else(|e| panic!("no Chromium session: {e}\n{}", driver.log()));
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let page = Self {
            client,
            driver,
            session,
            base: base.to_owned(),
            console: Vec::new(),
        };
        page.size_viewport().await;
        page
    }

    /// Headless Chromium counts its (invisible) window frame in `--window-size`, so the
    /// window is grown by the difference until the page itself is WIDTH×HEIGHT.
    async fn size_viewport(&self) {
        let inner = self.js("return [innerWidth, innerHeight]", vec![]).await;
        let (iw, ih) = (
            inner[0].as_u64().unwrap_or(0),
            inner[1].as_u64().unwrap_or(0),
        );
        let (ow, oh) = self.client.get_window_size().await.expect("window size");
        let grow = |outer: u64, want: u32, inner: u64| {
            let size = (outer + u64::from(want)).saturating_sub(inner);
            u32::try_from(size).unwrap_or(u32::MAX)
        };
        self.client
            .set_window_size(grow(ow, WIDTH, iw), grow(oh, HEIGHT, ih))
            .await
            .expect("set window size");
        let inner = self.js("return [innerWidth, innerHeight]", vec![]).await;
        assert_eq!(inner, json!([WIDTH, HEIGHT]), "viewport after resizing");
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Runs `script` in the page (`arguments[i]` are `args`) and returns its value.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Text of the first element matching `css` ("" when there is none).
    async fn text(&self, css: &str) -> String {
        let value = self
            .js(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : '';",
                vec![json!(css)],
            )
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Whether WebDriver considers the element matching `css` shown.
    async fn displayed(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Polls `probe` until it gives a value, for at most `limit`; panics naming `what`
    /// and showing the page's text otherwise.
    async fn wait<T>(
        &self,
        what: &str,
        limit: Duration,
        mut probe: impl AsyncFnMut() -> Option<T>,
    ) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if started.elapsed() > limit {
                let text = self.js("return document.body.innerText", vec![]).await;
                panic!(
                    "waited {limit:?} for {what}; the page shows:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element matching `css`, finding it again when the page re-rendered it
    /// between the look-up and the click (rows are replaced on every event).
    async fn click(&self, css: &str) {
        self.wait(&format!("a clickable {css}"), secs(10), async || {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            match element.click().await {
                Ok(()) => Some(()),
                Err(e) if e.is_stale_element_reference() || e.is_element_not_interactable() => None,
                Err(e) => panic!("click {css}: {e}"),
            }
        })
        .await;
    }

    /// Replaces the value of the input matching `css` by typing `text`.
    async fn type_into(&self, css: &str, text: &str) {
        let input = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Console entries since the last call; all of them are kept for the report.
    async fn console(&mut self) -> Vec<Value> {
        let fresh = self
            .driver
            .console(&self.session)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.console.extend(fresh.iter().cloned());
        fresh
    }

    /// Asserts that nothing went to the console as an error since the last look, but
    /// what `expected` allows (e.g. the 400 of a rejected form).
    async fn assert_no_console_errors(&mut self, when: &str, expected: impl Fn(&str) -> bool) {
        let errors: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .filter(|e| !expected(e["message"].as_str().unwrap_or_default()))
            .collect();
        assert!(errors.is_empty(), "console errors {when}: {errors:#?}");
    }

    /// Writes a screenshot of the viewport to `path`; returns (width, height).
    async fn screenshot(&self, path: &Path) -> (u32, u32) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        png_size(&png)
    }

    /// The page's `#op=ID` fragment, once it differs from `before`.
    async fn selected_operation(&self, before: &str) -> String {
        self.wait(
            "the started operation to be opened (#op=ID)",
            secs(20),
            async || {
                let hash = self.js("return location.hash", vec![]).await;
                let hash = hash.as_str().unwrap_or_default();
                (hash != before)
                    .then(|| hash.strip_prefix("#op=").map(str::to_owned))
                    .flatten()
            },
        )
        .await
    }

    /// What row `id` of the operations table shows, or null when it is not there.
    async fn row(&self, id: &str) -> Value {
        self.js(
            r#"const tr = document.querySelector(`#ops-body tr[data-id="${CSS.escape(arguments[0])}"]`);
            if (!tr) return null;
            const bar = tr.querySelector('[role=progressbar]');
            return {
              status: tr.querySelector('.badge').textContent,
              pct: Number(bar.getAttribute('aria-valuenow')),
              width: bar.firstElementChild.getBoundingClientRect().width,
              step: tr.querySelector('td.step').textContent,
              cancel: Boolean(tr.querySelector('button.danger')),
            };"#,
            vec![json!(id)],
        )
        .await
    }

    /// Points of the loss chart's train and validation lines (0 while it is empty).
    async fn loss_points(&self) -> (u64, u64) {
        let value = self
            .js(
                r#"const chart = document.querySelector('#charts .chart');
                if (!chart || !chart.querySelector('figcaption strong') ||
                    chart.querySelector('figcaption strong').textContent !== 'loss') return [0, 0];
                const count = (cls) => {
                  const path = chart.querySelector(`path.${cls}:not(.raw)`);
                  return path ? (path.getAttribute('d').match(/[ML]/g) || []).length : 0;
                };
                return [count('train'), count('val')];"#,
                vec![],
            )
            .await;
        (
            value[0].as_u64().unwrap_or(0),
            value[1].as_u64().unwrap_or(0),
        )
    }

    /// Waits until the form lists the gateway's strategies (sorted by name).
    async fn wait_strategies(&self) {
        self.wait("the strategies in the training form", secs(20), async || {
            let names = self
                .js(
                    "return [...document.querySelectorAll('#train-strategy_name option')].map((o) => o.value)",
                    vec![],
                )
                .await;
            (names == json!([LONG, SHORT])).then_some(())
        })
        .await;
    }

    /// Fills the training form as a person would (picks the strategy by its label,
    /// types the lists) and presses "Start training".
    async fn submit_training(&self, strategy: &str, symbols: &str, timeframes: &str) {
        self.client
            .find(Locator::Css("#train-strategy_name"))
            .await
            .expect("strategy select")
            .select_by_label(strategy)
            .await
            .unwrap_or_else(|e| panic!("select strategy {strategy}: {e}"));
        self.type_into("#train-symbols", symbols).await;
        self.type_into("#train-timeframes", timeframes).await;
        self.click("#train-form button[type=submit]").await;
    }

    /// Starts a training from the form; returns the operation the page opened for it.
    async fn start_training(&self, strategy: &str, symbols: &str, timeframes: &str) -> String {
        let before = self.js("return location.hash", vec![]).await;
        self.submit_training(strategy, symbols, timeframes).await;
        self.selected_operation(before.as_str().unwrap_or_default())
            .await
    }

    async fn close(self) {
        // Ends the session (and its Chromium) cleanly; the driver is killed on drop.
        let _ = self.client.close().await;
    }
}

/// Width and height from a PNG's header (IHDR follows the 8-byte signature).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 24,
        "not a PNG"
    );
    let word = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (word(16), word(20))
}

/// The page loads clean with both services healthy; the console check is shown to catch
/// an error; a training started from the form is watched to `completed` with its
/// metrics; a second is cancelled through the dialog; a bad timeframe is refused next to
/// its field. The screenshot is taken while the first training runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operations_page_in_chromium() {
    let Some(tools) = tools() else { return };
    let _one = ONE_BROWSER.lock().await;
    let gateway = Gateway::start(&[]);
    let mut page = Page::open(&tools, &gateway.url(), "page").await;
    let started = Instant::now();

    // --- loads with no console errors; both services healthy -------------------------
    page.goto("/").await;
    page.wait("the event stream to be live", secs(20), async || {
        (page.text("#stream-state").await == "live").then_some(())
    })
    .await;
    let hosts = page
        .wait("both services to show healthy", secs(20), async || {
            let rows = page
                .js(
                    "return [...document.querySelectorAll('#hosts-body tr')].map((tr) => \
                     [tr.querySelector('th').textContent, tr.querySelector('.badge').textContent])",
                    vec![],
                )
                .await;
            (rows == json!([["data", "healthy"], ["training", "healthy"]])).then_some(rows)
        })
        .await;
    assert_eq!(page.text("#health-status").await, "healthy", "{hosts}");
    page.wait_strategies().await;
    page.assert_no_console_errors("after loading the page", |_| false)
        .await;
    // The check above would have failed on an error: one written now is seen.
    page.js("console.error('browser-test probe')", vec![]).await;
    let seen = page.console().await;
    assert!(
        seen.iter().any(|e| e["level"] == "SEVERE"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("browser-test probe")),
        "the console collector missed an error: {seen:?}"
    );
    eprintln!("page loaded clean after {:?}", started.elapsed());

    // --- a training from the form: row, moving progress, growing curve, completed ------
    let short = page.start_training(SHORT, "AAPL", "1h").await;
    page.wait("the training's row", secs(10), async || {
        (!page.row(&short).await.is_null()).then_some(())
    })
    .await;
    let mut percentages = Vec::new();
    let mut widths = Vec::new();
    let mut points_while_running = Vec::new();
    let mut screenshot = None;
    let last = page
        .wait(
            "the training to complete in the table",
            secs(240),
            async || {
                let row = page.row(&short).await;
                let status = row["status"].as_str().unwrap_or_default().to_owned();
                if status == "running" {
                    let pct = row["pct"].as_u64().unwrap_or(0);
                    if percentages.last() != Some(&pct) {
                        percentages.push(pct);
                    }
                    widths.push(row["width"].as_f64().unwrap_or(0.0));
                    let (train, _) = page.loss_points().await;
                    if points_while_running.last() != Some(&train) {
                        points_while_running.push(train);
                    }
                    // Mid-training, with a curve worth showing.
                    if screenshot.is_none() && train >= SCREENSHOT_AT {
                        // The table's row, the run's figures and both curves in one view.
                        page.js(
                            "document.getElementById('charts').scrollIntoView({block: 'end'})",
                            vec![],
                        )
                        .await;
                        let path = output_dir().join("operations-page.png");
                        let size = page.screenshot(&path).await;
                        screenshot = Some((path, size));
                    }
                }
                (status == "completed").then_some(row)
            },
        )
        .await;
    let (path, size) = screenshot.expect(
        "a screenshot while the training ran (its curve never reached SCREENSHOT_AT points)",
    );
    println!("screenshot of the page mid-training: {}", path.display());
    assert_eq!(size, (WIDTH, HEIGHT), "screenshot size");
    assert!(
        percentages.iter().filter(|&&p| p > 0 && p < 100).count() >= 2,
        "the progress bar did not move while running: {percentages:?}"
    );
    let drawn = |pick: fn(f64, f64) -> f64| widths.iter().copied().reduce(pick).unwrap_or(0.0);
    assert!(
        drawn(f64::max) > drawn(f64::min) + 1.0,
        "the drawn bar kept its width while running: {widths:?}"
    );
    assert!(
        points_while_running.len() >= 2 && points_while_running.iter().any(|&n| n >= 2),
        "the loss curve did not grow while running: {points_while_running:?}"
    );
    assert_eq!(last["pct"], 100, "{last}");
    let (status, op) = gateway
        .api(&format!("/api/v1/operations/{short}"), None)
        .await;
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["data"]["status"], "completed", "{op}");
    let epochs = op["data"]["result_summary"]["training_metrics"]["epochs_trained"]
        .as_u64()
        .expect("epochs_trained");
    assert!(epochs >= 2, "{op}");
    page.wait("the whole loss curve", secs(10), async || {
        (page.loss_points().await == (epochs, epochs)).then_some(())
    })
    .await;
    // The test metrics, as the API has them (rounded to 4 places, as the page shows).
    let test = &op["data"]["result_summary"]["test_metrics"];
    let accuracy = test["test_accuracy"]
        .as_f64()
        .expect("test accuracy in the API");
    let shown = page
        .wait("the test metrics", secs(10), async || {
            let cells = page
                .js(
                    "return [...document.querySelectorAll('#training-result th, #training-result td')].map((c) => c.textContent)",
                    vec![],
                )
                .await;
            cells
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "test accuracy"))
                .then_some(cells)
        })
        .await;
    let rounded = format!("{accuracy:.4}")
        .parse::<f64>()
        .expect("rounded")
        .to_string();
    assert_eq!(shown[0], "test accuracy", "{shown}");
    assert_eq!(
        shown[5],
        rounded.as_str(),
        "test accuracy shown vs the API's {accuracy}: {shown}"
    );
    assert!(
        shown.as_array().into_iter().flatten().all(|c| c != "—"),
        "a test metric is missing: {shown}"
    );
    page.assert_no_console_errors("while training", |_| false)
        .await;
    eprintln!(
        "training {short}: {epochs} epochs, progress seen at {percentages:?}, curve at {points_while_running:?} points; {:?} so far",
        started.elapsed()
    );

    // --- a second training, cancelled through the confirmation -------------------------
    let long = page.start_training(LONG, "AAPL", "1h").await;
    page.wait(
        "the long training to run with a Cancel button",
        secs(60),
        async || {
            let row = page.row(&long).await;
            (row["status"] == "running" && row["cancel"] == true).then_some(())
        },
    )
    .await;
    page.click(&format!("#ops-body tr[data-id=\"{long}\"] button.danger"))
        .await;
    page.wait("the confirmation dialog", secs(10), async || {
        page.displayed("#confirm").await.then_some(())
    })
    .await;
    assert!(
        page.text("#confirm-text").await.contains("will be stopped"),
        "{}",
        page.text("#confirm").await
    );
    page.click("#confirm button[value=yes]").await;
    let row = page
        .wait("the long training to end cancelled", secs(60), async || {
            let row = page.row(&long).await;
            (row["status"] == "cancelled").then_some(row)
        })
        .await;
    assert_eq!(
        row["cancel"], false,
        "a cancelled row offers no Cancel: {row}"
    );
    assert!(!page.displayed("#confirm").await, "the dialog closed");
    let (_, op) = gateway
        .api(&format!("/api/v1/operations/{long}"), None)
        .await;
    assert_eq!(op["data"]["status"], "cancelled", "{op}");
    page.assert_no_console_errors("cancelling", |_| false).await;

    // --- an unknown timeframe: the API's error beside the field, nothing started -------
    let count = gateway.operation_count().await;
    let rows = page
        .js(
            "return document.querySelectorAll('#ops-body tr[data-id]').length",
            vec![],
        )
        .await;
    let before = page.js("return location.hash", vec![]).await;
    page.submit_training(SHORT, "AAPL", "7x").await;
    let shown = page
        .wait(
            "the timeframe's error beside its field",
            secs(10),
            async || {
                let text = page.text("#train-timeframes-error").await;
                (!text.is_empty()).then_some(text)
            },
        )
        .await;
    // What the API itself says about that request.
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v1/trainings/start", gateway.url()))
        .json(&json!({ "strategy_name": SHORT, "symbols": ["AAPL"], "timeframes": ["7x"] }))
        .send()
        .await
        .expect("POST");
    assert_eq!(answer.status().as_u16(), 400);
    let answer: Value = answer.json().await.expect("error body");
    assert_eq!(
        shown,
        answer["error"]["message"].as_str().unwrap_or_default(),
        "{answer}"
    );
    assert!(
        page.displayed("#train-timeframes-error").await,
        "the error is visible"
    );
    let invalid = page
        .client
        .find(Locator::Css("#train-timeframes"))
        .await
        .expect("timeframes input")
        .attr("aria-invalid")
        .await
        .expect("aria-invalid");
    assert_eq!(
        invalid.as_deref(),
        Some("true"),
        "the field is marked invalid"
    );
    assert_eq!(
        page.text("#train-error").await,
        "",
        "the error is beside the field only"
    );
    assert_eq!(
        gateway.operation_count().await,
        count,
        "an operation was started"
    );
    assert_eq!(
        page.js(
            "return document.querySelectorAll('#ops-body tr[data-id]').length",
            vec![]
        )
        .await,
        rows
    );
    assert_eq!(
        page.js("return location.hash", vec![]).await,
        before,
        "nothing was opened"
    );
    // The refused POST is the only error the browser reports.
    page.assert_no_console_errors("refusing the timeframe", |m| {
        m.contains("/api/v1/trainings/start") && m.contains("400")
    })
    .await;

    // Everything else the browser said (warnings, hints), for whoever reads the output.
    let other: Vec<&Value> = page
        .console
        .iter()
        .filter(|e| e["level"] != "SEVERE")
        .collect();
    eprintln!("other console entries: {other:#?}");
    eprintln!(
        "operations page scenarios passed in {:?}",
        started.elapsed()
    );
    page.close().await;
}

/// A keyed gateway: without the key the page shows only the prompt (and no data); a
/// wrong key is refused at the prompt; with the key everything is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operations_page_asks_for_the_api_key() {
    let Some(tools) = tools() else { return };
    let _one = ONE_BROWSER.lock().await;
    let gateway = Gateway::start(&[("HOSTBRIDGE_API_KEY", KEY)]);
    let (status, _) = gateway.api("/api/v1/operations", None).await;
    assert_eq!(status, 401, "the gateway requires the key");
    let mut page = Page::open(&tools, &gateway.url(), "key").await;

    page.goto("/").await;
    page.wait("the key prompt", secs(20), async || {
        page.displayed("#login").await.then_some(())
    })
    .await;
    for hidden in [
        "#app",
        "#hosts-body",
        "#ops-body",
        "#train-form",
        "#sign-out",
    ] {
        assert!(
            !page.displayed(hidden).await,
            "{hidden} is shown without a key"
        );
    }
    let loaded = page
        .js("return document.querySelectorAll('#ops-body tr, #hosts-body tr, #train-strategy_name option').length", vec![])
        .await;
    assert_eq!(loaded, 0, "data reached the page without a key");

    page.type_into("#login-key", "not-the-key").await;
    page.click("#login-form button[type=submit]").await;
    page.wait("the wrong key to be refused", secs(20), async || {
        page.text("#login-error")
            .await
            .contains("did not accept")
            .then_some(())
    })
    .await;
    assert!(!page.displayed("#app").await, "a wrong key opened the page");

    page.type_into("#login-key", KEY).await;
    page.click("#login-form button[type=submit]").await;
    page.wait("the page after the key", secs(20), async || {
        (page.displayed("#app").await && page.text("#stream-state").await == "live").then_some(())
    })
    .await;
    assert!(
        !page.displayed("#login").await,
        "the prompt stays after the key"
    );
    assert!(
        page.displayed("#sign-out").await,
        "no way to forget the key"
    );
    page.wait("both services healthy behind the key", secs(20), async || {
        let badges = page
            .js("return [...document.querySelectorAll('#hosts-body .badge')].map((b) => b.textContent)", vec![])
            .await;
        (badges == json!(["healthy", "healthy"])).then_some(())
    })
    .await;
    page.wait_strategies().await;
    let url = page.js("return location.href", vec![]).await;
    assert!(
        !url.as_str().unwrap_or_default().contains(KEY),
        "the key is in the URL: {url}"
    );
    // The refused calls before the key (401) are all the browser reports.
    page.assert_no_console_errors("signing in", |m| m.contains("401"))
        .await;
    page.close().await;
}
