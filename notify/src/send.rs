//! Posting a message to a webhook, with retries and backoff.

use std::time::Duration;

use serde_json::Value;

/// Posts JSON bodies. A webhook has taken a message when it answers 2xx and, for the group
/// robots that answer `{"errcode": …}`, with errcode 0.
pub trait Transport: Send {
    fn post(&self, url: &str, body: &Value) -> Result<(), String>;
}

/// The HTTP transport (reqwest on a runtime of its own).
#[derive(Debug)]
pub struct HttpTransport {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl HttpTransport {
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?,
        })
    }
}

impl Transport for HttpTransport {
    fn post(&self, url: &str, body: &Value) -> Result<(), String> {
        self.runtime.block_on(async {
            let answer = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| format!("no answer: {e}"))?;
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            if !status.is_success() {
                return Err(format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                ));
            }
            match serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("errcode").and_then(Value::as_i64))
            {
                Some(0) | None => Ok(()),
                Some(code) => Err(format!(
                    "errcode {code}: {}",
                    text.chars().take(200).collect::<String>()
                )),
            }
        })
    }
}

/// Posts until the webhook takes it or `attempts` requests failed; the pause between two
/// starts at `first_pause` and doubles up to 30 s. Returns the requests made, or the last
/// error with them.
pub fn post_with_retries(
    transport: &dyn Transport,
    url: &str,
    body: &Value,
    attempts: u32,
    first_pause: Duration,
    mut on_attempt: impl FnMut(bool),
) -> Result<u32, (u32, String)> {
    let mut pause = first_pause;
    let mut made = 0;
    loop {
        made += 1;
        match transport.post(url, body) {
            Ok(()) => {
                on_attempt(true);
                return Ok(made);
            }
            Err(error) => {
                on_attempt(false);
                if made >= attempts.max(1) {
                    return Err((made, error));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
}
