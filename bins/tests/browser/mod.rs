//! What the browser tests share: Debian's `chromium` driven over WebDriver
//! (`chromedriver`, started on a free port) from fantoccini, waits with a
//! deadline, reads and clicks that survive a live update, and screenshots checked
//! not blank.
//!
//! Needs `chromium` and `chromium-driver` (`scripts/services.sh` installs them);
//! without them a test fails, saying so.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Polls `probe` every 50 ms until it answers `Some`, and panics with `what` and
/// the last answer when `limit` passes first.
pub(crate) async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let last = match probe().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `chromedriver` on a port of its own, killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub(crate) fn start(logs: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = std::fs::File::create(logs.join("chromedriver.log")).unwrap();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): install chromium and chromium-driver \
                     (scripts/services.sh does)"
                )
            });
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A headless Chromium session, once chromedriver answers.
    pub(crate) async fn session(&self, profile: &Path) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let caps = caps.as_object().unwrap().clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        eventually("a chromedriver session", Duration::from_secs(30), || {
            let mut builder = ClientBuilder::new(connector.clone());
            builder.capabilities(caps.clone());
            let url = self.url.clone();
            async move { builder.connect(&url).await.map_err(|e| e.to_string()) }
        })
        .await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of the first element `css` finds, read in one script: the live part
/// of a page is swapped whenever the fleet changes, so an element found in one
/// WebDriver call may be gone by the next.
pub(crate) async fn text(c: &Client, css: &str) -> Result<String, String> {
    let script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;";
    match c.execute(script, vec![json!(css)]).await {
        Ok(serde_json::Value::String(s)) => Ok(s.trim().to_string()),
        Ok(other) => Err(format!("{css}: {other}")),
        Err(e) => Err(format!("{css}: {e}")),
    }
}

/// Clicks the first element `css` finds, finding it again if a live update
/// replaced it in between.
pub(crate) async fn click(c: &Client, css: &str) {
    eventually(
        &format!("a click on {css}"),
        Duration::from_secs(5),
        || async {
            let el = c.find(Locator::Css(css)).await.map_err(|e| e.to_string())?;
            el.click().await.map_err(|e| e.to_string())
        },
    )
    .await;
}

/// The page's path.
pub(crate) async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

/// Clicks `css` until the browser is on `to`: a live update may replace the
/// element just as it is clicked, and then the click submits nothing. (No page
/// this clicks from has its `css` on `to`, so a click never lands twice.)
pub(crate) async fn click_to(c: &Client, css: &str, to: &str) {
    eventually(
        &format!("{to} after a click on {css}"),
        Duration::from_secs(10),
        || async {
            if path(c).await == to {
                return Ok(());
            }
            if let Ok(el) = c.find(Locator::Css(css)).await {
                let _ = el.click().await;
            }
            let now = path(c).await;
            (now == to).then_some(()).ok_or(now)
        },
    )
    .await;
}

/// Waits until the open page listens on its event stream (`/ui/events`), so a
/// change from now on reaches it.
pub(crate) async fn live(c: &Client) {
    eventually(
        "the live stream to open",
        Duration::from_secs(10),
        || async {
            let open = c
                .execute(
                    "const s = document.body['htmx-internal-data']; \
                     return !!(s && s.sseEventSource && s.sseEventSource.readyState === 1);",
                    vec![],
                )
                .await
                .map_err(|e| e.to_string())?;
            (open == json!(true)).then_some(()).ok_or(open.to_string())
        },
    )
    .await;
}

/// A decoded screenshot.
pub(crate) struct Picture {
    pixels: usize,
    samples: usize,
    data: Vec<u8>,
}

impl Picture {
    /// Decodes a PNG of 8-bit samples.
    pub(crate) fn decode(png: &[u8]) -> Picture {
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut data = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut data).unwrap();
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        data.truncate(info.buffer_size());
        Picture {
            pixels: (info.width * info.height) as usize,
            samples: info.color_type.samples(),
            data,
        }
    }

    /// How many pixels have each colour.
    fn colours(&self) -> std::collections::HashMap<&[u8], usize> {
        let mut colours = std::collections::HashMap::<&[u8], usize>::new();
        for px in self.data.chunks(self.samples) {
            *colours.entry(px).or_default() += 1;
        }
        colours
    }

    /// How many pixels are `rgb` exactly (the inside of a shape in that colour).
    pub(crate) fn count(&self, rgb: [u8; 3]) -> usize {
        self.data
            .chunks(self.samples)
            .filter(|px| px[..3] == rgb)
            .count()
    }

    /// Panics, naming `file`, unless the picture has many colours and no colour
    /// covers nearly all of it.
    fn assert_not_blank(&self, file: &Path) {
        let colours = self.colours();
        let commonest = colours.values().max().copied().unwrap_or(0);
        assert!(
            colours.len() > 20 && commonest < self.pixels * 97 / 100,
            "{} looks blank: {} colours, the commonest covers {commonest} of {} pixels",
            file.display(),
            colours.len(),
            self.pixels
        );
    }
}

/// Writes a screenshot to `dir/name.png` and checks it is not blank: it decodes,
/// has many colours, and no colour covers nearly all of it.
pub(crate) async fn screenshot(c: &Client, dir: &Path, name: &str) -> PathBuf {
    let png = c.screenshot().await.unwrap();
    let file = dir.join(format!("{name}.png"));
    std::fs::write(&file, &png).unwrap();
    Picture::decode(&png).assert_not_blank(&file);
    file
}

/// A screenshot of the first element `css` finds, written to `dir/name.png` and
/// checked not blank (found again if a live update replaced it meanwhile).
pub(crate) async fn element_screenshot(c: &Client, css: &str, dir: &Path, name: &str) -> Picture {
    let png = eventually(
        &format!("a screenshot of {css}"),
        Duration::from_secs(5),
        || async {
            let el = c.find(Locator::Css(css)).await.map_err(|e| e.to_string())?;
            el.screenshot().await.map_err(|e| e.to_string())
        },
    )
    .await;
    let file = dir.join(format!("{name}.png"));
    std::fs::write(&file, &png).unwrap();
    let picture = Picture::decode(&png);
    picture.assert_not_blank(&file);
    picture
}

/// What `script` returns, as a number (its arguments: `args`).
pub(crate) async fn number(
    c: &Client,
    script: &str,
    args: Vec<serde_json::Value>,
) -> Result<f64, String> {
    match c.execute(script, args).await {
        Ok(v) => v.as_f64().ok_or_else(|| format!("not a number: {v}")),
        Err(e) => Err(e.to_string()),
    }
}
