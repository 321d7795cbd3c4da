//! The HTTP client for the Testsigma Test Management API: the base URL rules, the one
//! create call, the read-only calls, and what each answer means for a row. It classifies;
//! `upload.rs` decides what to do about it.

pub mod connect;
pub mod users;

pub use connect::{ServiceSettings, connect};

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

pub const DEFAULT_BASE_URL: &str = "https://test-management.testsigma.com/api/v1";

/// The bearer key. Never printed: `Debug` and `Display` show a placeholder.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: &str) -> Option<ApiKey> {
        let key = key.trim();
        (!key.is_empty()).then(|| ApiKey(key.to_string()))
    }

    /// The key `--sandbox` uses when none is set: the in-process sandbox takes any key.
    pub fn sandbox() -> ApiKey {
        ApiKey("sandbox".to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("--base-url `{url}` is not a URL: {reason}")]
    BadBaseUrl { url: String, reason: String },
    #[error(
        "--base-url `{url}` is plain http:// to a host that is not this machine: the API key would cross the network in clear text. Use https://, or pass --allow-insecure if you really mean it"
    )]
    Insecure { url: String },
    #[error(
        "--base-url `{url}` has {part} `{extra}`, but the request paths are added to its end, so it must stop at the API root's path. Remove the `{extra}` part: `{suggested}`"
    )]
    BaseUrlExtra {
        url: String,
        part: &'static str,
        extra: String,
        suggested: String,
    },
    #[error("could not build the HTTP client: {0}")]
    Client(String),
    #[error("the service refused the API key (HTTP {status}): {message}. Check TESTSIGMA_API_KEY or --api-key-file")]
    KeyRefused { status: u16, message: String },
    #[error("{0}")]
    Redirected(Redirect),
    #[error("{what}: HTTP {status}: {message}")]
    Status { what: String, status: u16, message: String },
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
}

/// A redirect answer, and the base URL that would avoid it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub status: u16,
    pub location: String,
    pub suggested_base: Option<String>,
}

impl fmt::Display for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the service answered HTTP {} with a redirect to {}",
            self.status, self.location
        )?;
        match &self.suggested_base {
            // HTTP clients drop the Authorization header when a redirect crosses hosts, which
            // then looks like a refused key; following it silently would hide the real fix.
            Some(base) => write!(f, "; use --base-url {base}"),
            None => write!(f, "; point --base-url at the API root the redirect names"),
        }
    }
}

/// Checks a base URL: https anywhere, http only to this machine unless allowed.
pub fn check_base_url(url: &str, allow_insecure: bool) -> Result<String, ApiError> {
    let trimmed = url.trim().trim_end_matches('/').to_string();
    let parsed = Url::parse(&trimmed).map_err(|e| ApiError::BadBaseUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    match parsed.scheme() {
        "https" => {}
        "http" => {
            if !is_loopback(&parsed) && !allow_insecure {
                return Err(ApiError::Insecure { url: url.to_string() });
            }
        }
        other => {
            return Err(ApiError::BadBaseUrl {
                url: url.to_string(),
                reason: format!("the scheme must be https (or http to this machine), not `{other}`"),
            });
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::BadBaseUrl {
            url: url.to_string(),
            reason: "it has no host".to_string(),
        });
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::BadBaseUrl {
            url: "(hidden: it holds credentials)".to_string(),
            reason: "credentials do not belong in the URL; the key goes in TESTSIGMA_API_KEY".to_string(),
        });
    }
    // The request paths are appended to the text as given: anything after a `?` or `#` would
    // swallow them (`/api/v1?x=1/projects/...`) or drop them (`/api/v1#x/projects/...`).
    if parsed.query().is_some() || parsed.fragment().is_some() {
        let at = trimmed.find(['?', '#']).unwrap_or(trimmed.len());
        let (suggested, extra) = trimmed.split_at(at);
        let part = if parsed.query().is_some() {
            "a query string"
        } else {
            "a fragment"
        };
        return Err(ApiError::BaseUrlExtra {
            url: url.to_string(),
            part,
            extra: extra.to_string(),
            suggested: suggested.trim_end_matches('/').to_string(),
        });
    }
    Ok(trimmed)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// What one create request came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Created {
        id: String,
        human_id: Option<String>,
        status: u16,
        request_id: Option<String>,
    },
    /// Certainly not created, and worth trying again (connection refused, 429, 503, rate limit, ...).
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
        rate_limited: bool,
        request_id: Option<String>,
    },
    /// Certainly not created; trying again would get the same answer.
    Rejected {
        status: u16,
        error: String,
        request_id: Option<String>,
    },
    /// 401/403: the key is wrong, and every row would fail.
    KeyRefused {
        status: u16,
        error: String,
        request_id: Option<String>,
    },
    /// Sent, but no usable answer: the run may exist.
    Unknown {
        status: Option<u16>,
        error: String,
        request_id: Option<String>,
    },
    Redirected(Redirect),
}

impl Answer {
    /// The HTTP status the service answered with; `None` when no answer came.
    pub fn status(&self) -> Option<u16> {
        match self {
            // A rejection with status 0 was made here (no usable key), not by the service.
            Answer::Created { status, .. } | Answer::Rejected { status, .. } | Answer::KeyRefused { status, .. } => {
                Some(*status).filter(|s| *s != 0)
            }
            Answer::Retry { status, .. } | Answer::Unknown { status, .. } => *status,
            Answer::Redirected(redirect) => Some(redirect.status),
        }
    }

    /// The connection was never made: no request left this machine.
    pub fn never_connected(&self) -> bool {
        matches!(self, Answer::Retry { status: None, error, .. } if error.starts_with(NOT_CONNECTED))
    }
}

/// How an answer whose connection was never made begins.
const NOT_CONNECTED: &str = "could not connect";

/// A user from `GET /users`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
}

/// The longest a connection may take to be made: half of `--timeout`, 10 s at most.
///
/// It must run out before the request's own timeout. A connection that cannot be made (a
/// host or firewall that drops the packets) then ends as a connect error: nothing was
/// sent, so the row is retried, and the run stops as for a refused connection if nothing
/// ever answers. At the request's full timeout instead, reqwest reports the request's
/// timeout, which cannot tell an unmade connection from an unanswered request, so every
/// row became `unknown` ("the run may exist") though nothing had left this machine.
fn connect_timeout(timeout: Duration) -> Duration {
    (timeout / 2).min(Duration::from_secs(10))
}

pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
    timeout: Duration,
    /// How often a read-only GET is tried again after a transient failure.
    read_retries: u32,
    /// GET requests made so far, retries included: each counts against the service's window.
    reads: std::sync::atomic::AtomicUsize,
}

impl ApiClient {
    /// `base` must have passed [`check_base_url`].
    pub fn new(base: &str, key: ApiKey, timeout: Duration) -> Result<ApiClient, ApiError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("testsigma-import/", env!("CARGO_PKG_VERSION")))
            // Never follow: a cross-host redirect would drop (or worse, leak) the key, and a
            // POST turned into a GET creates nothing while looking like success.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(connect_timeout(timeout))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ApiError::Client(error_chain(&e)))?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            key,
            timeout,
            read_retries: 5,
            reads: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn auth(&self) -> Result<HeaderValue, ApiError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.key.expose())).map_err(|_| {
            ApiError::Client("the API key holds characters that cannot go in an HTTP header".to_string())
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// The key never leaves through a service's words: a body or error that echoes the
    /// request's headers is scrubbed before anyone can print or store it.
    fn scrub(&self, text: String) -> String {
        let key = self.key.expose();
        if key.is_empty() || !text.contains(key) {
            text
        } else {
            text.replace(key, "***")
        }
    }

    fn scrub_body(&self, body: impl AsRef<[u8]> + Into<Vec<u8>>) -> Vec<u8> {
        let key = self.key.expose().as_bytes();
        if key.is_empty() || !body.as_ref().windows(key.len()).any(|w| w == key) {
            return body.into();
        }
        self.scrub(String::from_utf8_lossy(body.as_ref()).into_owned())
            .into_bytes()
    }

    fn scrub_answer(&self, answer: Answer) -> Answer {
        match answer {
            Answer::Retry {
                status,
                error,
                retry_after,
                rate_limited,
                request_id,
            } => Answer::Retry {
                status,
                error: self.scrub(error),
                retry_after,
                rate_limited,
                request_id,
            },
            Answer::Rejected {
                status,
                error,
                request_id,
            } => Answer::Rejected {
                status,
                error: self.scrub(error),
                request_id,
            },
            Answer::KeyRefused {
                status,
                error,
                request_id,
            } => Answer::KeyRefused {
                status,
                error: self.scrub(error),
                request_id,
            },
            Answer::Unknown {
                status,
                error,
                request_id,
            } => Answer::Unknown {
                status,
                error: self.scrub(error),
                request_id,
            },
            Answer::Redirected(r) => Answer::Redirected(self.scrub_redirect(r)),
            created @ Answer::Created { .. } => created,
        }
    }

    fn scrub_error(&self, error: ApiError) -> ApiError {
        match error {
            ApiError::KeyRefused { status, message } => ApiError::KeyRefused {
                status,
                message: self.scrub(message),
            },
            ApiError::Status { what, status, message } => ApiError::Status {
                what,
                status,
                message: self.scrub(message),
            },
            ApiError::Transport { what, message } => ApiError::Transport {
                what,
                message: self.scrub(message),
            },
            ApiError::Client(message) => ApiError::Client(self.scrub(message)),
            ApiError::Redirected(r) => ApiError::Redirected(self.scrub_redirect(r)),
            other => other,
        }
    }

    /// The `Location` header is the service's text too: scrubbed whole, then cleaned.
    fn scrub_redirect(&self, mut r: Redirect) -> Redirect {
        r.location = clean_service_text(&self.scrub(r.location));
        r.suggested_base = r.suggested_base.map(|b| clean_service_text(&self.scrub(b)));
        r
    }

    /// `POST /projects/{project_id}/test_runs` with a body already serialised.
    pub async fn create_test_run(&self, project_id: &str, body: Vec<u8>, idempotency_key: &str) -> Answer {
        let answer = self.send_create(project_id, body, idempotency_key).await;
        self.scrub_answer(answer)
    }

    async fn send_create(&self, project_id: &str, body: Vec<u8>, idempotency_key: &str) -> Answer {
        let path = format!("/projects/{project_id}/test_runs");
        let auth = match self.auth() {
            Ok(a) => a,
            Err(e) => {
                return Answer::Rejected {
                    status: 0,
                    error: e.to_string(),
                    request_id: None,
                };
            }
        };
        let sent = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header("Idempotency-Key", idempotency_key)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return self.transport_answer(&e),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = request_id(&headers).map(|r| clean_service_text(&self.scrub(r)));
        if status.is_redirection() {
            return Answer::Redirected(redirect(&self.base, &path, status, &headers));
        }
        let bytes = read_body(response, MAX_ANSWER_BYTES).await;
        let code = status.as_u16();
        let bytes = match bytes {
            // Scrubbed whole, before any message cuts it short and splits the key.
            Ok(b) => self.scrub_body(b),
            Err(e) if status.is_success() => {
                return Answer::Unknown {
                    status: Some(code),
                    error: format!("the answer's body could not be read: {e}"),
                    request_id,
                };
            }
            Err(e) => {
                return classify_failure(status, &headers, &format!("body unreadable: {e}"), request_id);
            }
        };
        if status.is_success() {
            return match parse_created(&bytes) {
                Some((id, human_id)) => Answer::Created {
                    id,
                    human_id,
                    status: code,
                    request_id,
                },
                None => Answer::Unknown {
                    status: Some(code),
                    error: format!(
                        "HTTP {code} but the body holds no test run id, so the run may exist: {}",
                        snippet(&bytes)
                    ),
                    request_id,
                },
            };
        }
        classify_failure(status, &headers, &service_message(&bytes), request_id)
    }

    fn transport_answer(&self, e: &reqwest::Error) -> Answer {
        let detail = error_chain(e);
        if e.is_connect() {
            // The connection was never made, so the request cannot have been acted on.
            return Answer::Retry {
                status: None,
                error: format!("{NOT_CONNECTED}: {detail}"),
                retry_after: None,
                rate_limited: false,
                request_id: None,
            };
        }
        if e.is_timeout() {
            return Answer::Unknown {
                status: None,
                error: format!(
                    "no answer within {} s (--timeout); the run may exist",
                    self.timeout.as_secs_f64()
                ),
                request_id: None,
            };
        }
        Answer::Unknown {
            status: None,
            error: format!("the connection failed after sending: {detail}"),
            request_id: None,
        }
    }

    /// Retry a failed GET at most `retries` times (`--max-retries`); the default is 5.
    pub fn with_read_retries(mut self, retries: u32) -> ApiClient {
        self.read_retries = retries;
        self
    }

    /// GET requests made so far, retries included.
    pub fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A GET is safe to repeat, so transient failures (the rate-limit 500, 502/503/504, 408, 429,
    /// a dropped connection, a cut-short body) are retried with backoff, honouring `Retry-After`.
    async fn get_json(&self, path: &str, what: &str) -> Result<serde_json::Value, ApiError> {
        let mut retries = 0;
        loop {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let failure = match self.fetch_json(path, what).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let error = self.scrub_error(failure.error);
            if !failure.transient || retries >= self.read_retries {
                return Err(if failure.transient && retries > 0 {
                    error.gave_up_after(retries)
                } else {
                    error
                });
            }
            retries += 1;
            let wait = failure.retry_after.unwrap_or_else(|| crate::upload::backoff(retries));
            tracing::info!(what, retry = retries, wait_ms = wait.as_millis() as u64, error = %error, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn fetch_json(&self, path: &str, what: &str) -> Result<serde_json::Value, ReadFailure> {
        let transport = |e: reqwest::Error| ReadFailure {
            error: ApiError::Transport {
                what: what.to_string(),
                message: error_chain(&e),
            },
            transient: true,
            retry_after: None,
        };
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, self.auth().map_err(ReadFailure::fatal)?)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_redirection() {
            return Err(ReadFailure::fatal(ApiError::Redirected(redirect(
                &self.base, path, status, &headers,
            ))));
        }
        let bytes = read_body(response, MAX_LIST_BYTES).await.map_err(|e| ReadFailure {
            error: ApiError::Transport {
                what: what.to_string(),
                message: e.to_string(),
            },
            transient: matches!(e, BodyError::Transport(_)),
            retry_after: None,
        })?;
        let bytes = self.scrub_body(bytes);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ReadFailure::fatal(ApiError::KeyRefused {
                status: status.as_u16(),
                message: service_message(&bytes),
            }));
        }
        if !status.is_success() {
            return Err(ReadFailure {
                error: ApiError::Status {
                    what: what.to_string(),
                    status: status.as_u16(),
                    message: service_message(&bytes),
                },
                transient: matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504),
                retry_after: retry_after(&headers),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ReadFailure {
            error: ApiError::Transport {
                what: what.to_string(),
                message: format!("the answer is not JSON ({e}): {}", snippet(&bytes)),
            },
            // A 2xx that is not JSON is most likely cut short; a second read is harmless.
            transient: true,
            retry_after: None,
        })
    }

    /// `GET /users`: every user, for resolving assignees given as e-mail addresses.
    pub async fn users(&self) -> Result<Vec<User>, ApiError> {
        let value = self.get_json("/users", "GET /users").await?;
        let data = value.get("data").cloned().unwrap_or(value);
        serde_json::from_value(data).map_err(|e| ApiError::Transport {
            what: "GET /users".to_string(),
            message: format!("unexpected shape: {e}"),
        })
    }

    /// `GET /projects/{id}`: Ok(true) when it exists, Ok(false) on 404.
    pub async fn project_exists(&self, project_id: &str) -> Result<bool, ApiError> {
        match self
            .get_json(&format!("/projects/{project_id}"), "GET /projects/{id}")
            .await
        {
            Ok(_) => Ok(true),
            Err(ApiError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl ApiError {
    /// The error, its message saying that the retries ran out.
    fn gave_up_after(self, retries: u32) -> ApiError {
        let note = |message: String| format!("{message}{}", crate::upload::gave_up(retries));
        match self {
            ApiError::Status { what, status, message } => ApiError::Status {
                what,
                status,
                message: note(message),
            },
            ApiError::Transport { what, message } => ApiError::Transport {
                what,
                message: note(message),
            },
            other => other,
        }
    }
}

/// Why a GET failed, and whether trying it again could help.
struct ReadFailure {
    error: ApiError,
    transient: bool,
    retry_after: Option<Duration>,
}

impl ReadFailure {
    fn fatal(error: ApiError) -> ReadFailure {
        ReadFailure {
            error,
            transient: false,
            retry_after: None,
        }
    }
}

/// A non-2xx, non-3xx answer. Most say the run was not created; retry only what is worth
/// retrying. A server error that is not the rate limit may come after the run was made.
fn classify_failure(status: StatusCode, headers: &HeaderMap, message: &str, request_id: Option<String>) -> Answer {
    let code = status.as_u16();
    let error = format!("HTTP {code}: {message}");
    let retry_after = retry_after(headers);
    // The real service answers its rate limit with a 500 whose message says so, not a 429.
    let rate_limited = code == 429 || (code == 500 && message.to_ascii_lowercase().contains("rate limit"));
    match code {
        401 | 403 => Answer::KeyRefused {
            status: code,
            error,
            request_id,
        },
        408 | 429 | 503 => Answer::Retry {
            status: Some(code),
            error,
            retry_after,
            rate_limited,
            request_id,
        },
        500 if rate_limited => Answer::Retry {
            status: Some(code),
            error,
            retry_after,
            rate_limited,
            request_id,
        },
        // Any other 500, a bad gateway or a gateway timeout: the service may have created
        // the run before it failed, so sending it again could create it twice.
        500 | 502 | 504 => Answer::Unknown {
            status: Some(code),
            error: format!("{error}; the run may exist"),
            request_id,
        },
        _ => Answer::Rejected {
            status: code,
            error,
            request_id,
        },
    }
}

fn parse_created(bytes: &[u8]) -> Option<(String, Option<String>)> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let run = value.get("data")?.get("test_run")?;
    let id = match run.get("id")? {
        serde_json::Value::String(s) if !s.is_empty() => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let human_id = match run.get("human_id") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Some((id, human_id))
}

/// The service's own words from an error body, in either of its shapes, made safe to show
/// by [`clean_service_text`].
pub fn service_message(bytes: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return snippet(bytes);
    };
    let text = |v: Option<&serde_json::Value>| match v {
        // Blank once cleaned (only spaces and control characters) says nothing.
        Some(serde_json::Value::String(s)) if s.chars().any(|c| !is_blank(c)) => {
            Some(s.trim_matches(is_blank).to_string())
        }
        Some(serde_json::Value::Null) | None => None,
        Some(serde_json::Value::String(_)) => None,
        Some(other) => Some(other.to_string()),
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = text(value.get("message")) {
        parts.push(m);
    }
    if let Some(errors) = value.get("errors") {
        for m in [text(errors.get("message")), text(errors.get("details"))]
            .into_iter()
            .flatten()
        {
            if !parts.contains(&m) {
                parts.push(m);
            }
        }
        if errors.is_string() || errors.is_array() {
            parts.push(errors.to_string());
        }
    }
    if parts.is_empty() {
        snippet(bytes)
    } else {
        clean_service_text(&parts.join(": "))
    }
}

/// The most of a create answer read into memory: a few hundred bytes are expected, and a
/// service that sends megabytes is answered as unreadable rather than let fill memory.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// The same for the lists read before sending (`GET /users`): room for many thousands.
const MAX_LIST_BYTES: usize = 64 << 20;

/// Why an answer's body was not read whole.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("{}", error_chain(.0))]
    Transport(reqwest::Error),
    #[error("it is over {} MB, more than any answer of this API needs; it was not read", .0 >> 20)]
    TooLarge(usize),
}

/// The body, up to `limit` bytes; past that, [`BodyError::TooLarge`] without reading on.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A body that is not the service's JSON (an HTML error page, a cut-short answer), as text
/// [`clean_service_text`] made safe to show.
fn snippet(bytes: &[u8]) -> String {
    let text = clean_service_text(&String::from_utf8_lossy(bytes));
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text
    }
}

/// The most characters of the service's text a message shows.
const SERVICE_TEXT_LIMIT: usize = 500;

fn is_blank(c: char) -> bool {
    // Bidirectional marks and overrides too: U+202E would show the rest of a line reversed.
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text the service wrote, fit to print and to store: every control character (C0 with
/// newlines and tabs, DEL, C1) becomes a space, so an answer cannot move the cursor, clear the
/// terminal or add lines of its own; runs of spaces become one; and past
/// [`SERVICE_TEXT_LIMIT`] characters it is cut, saying how much was left out.
pub fn clean_service_text(text: &str) -> String {
    let mut chars = text
        .split(is_blank)
        .filter(|word| !word.is_empty())
        .flat_map(|word| std::iter::once(' ').chain(word.chars()))
        .skip(1);
    let mut kept: String = chars.by_ref().take(SERVICE_TEXT_LIMIT).collect();
    let mut more = chars.count();
    if more == 0 {
        return kept;
    }
    if kept.ends_with(' ') {
        kept.pop();
        more += 1;
    }
    let unit = if more == 1 { "character" } else { "characters" };
    format!("{kept}… ({more} more {unit})")
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn redirect(base: &str, path: &str, status: StatusCode, headers: &HeaderMap) -> Redirect {
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let absolute = Url::parse(&format!("{base}{path}"))
        .ok()
        .and_then(|u| u.join(&location).ok());
    let suggested_base = absolute.and_then(|url| {
        let text = url.as_str().split(['?', '#']).next().unwrap_or("").to_string();
        text.strip_suffix(path).map(str::to_string)
    });
    Redirect {
        status: status.as_u16(),
        location,
        suggested_base,
    }
}

/// An error and its causes on one line, as `{:#}` would print them.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        for (url, insecure, ok) in [
            ("https://test-management.testsigma.com/api/v1/", false, true),
            ("http://127.0.0.1:8080/api/v1", false, true),
            ("http://localhost:8080/api/v1", false, true),
            ("http://[::1]:8080/api/v1", false, true),
            ("http://example.com/api/v1", false, false),
            ("http://example.com/api/v1", true, true),
            ("ftp://example.com", true, false),
            ("not a url", false, false),
            ("https://user:pw@example.com/api/v1", false, false),
            ("http://127.0.0.1:8080/api/v1?x=1", false, false),
            ("http://127.0.0.1:8080/api/v1#x", false, false),
            ("https://x.test/api/v1/?", false, false),
            ("https://x.test/api/v1#", false, false),
            ("https://x.test/api/v1?a=b#c", false, false),
            ("https://x.test/api/v1#c?a=b", false, false),
        ] {
            assert_eq!(check_base_url(url, insecure).is_ok(), ok, "{url}");
        }
        for (url, part, extra, suggested) in [
            (
                "http://127.0.0.1:8080/api/v1?x=1",
                "a query string",
                "?x=1",
                "http://127.0.0.1:8080/api/v1",
            ),
            (
                "http://127.0.0.1:8080/api/v1#x",
                "a fragment",
                "#x",
                "http://127.0.0.1:8080/api/v1",
            ),
            (
                "https://x.test/api/v1/?",
                "a query string",
                "?",
                "https://x.test/api/v1",
            ),
            (
                "https://x.test/api/v1?a=b#c",
                "a query string",
                "?a=b#c",
                "https://x.test/api/v1",
            ),
            (
                "https://x.test/api/v1#c?a=b",
                "a fragment",
                "#c?a=b",
                "https://x.test/api/v1",
            ),
        ] {
            let err = check_base_url(url, false).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "--base-url `{url}` has {part} `{extra}`, but the request paths are added to its end, so it must stop at the API root's path. Remove the `{extra}` part: `{suggested}`"
                ),
                "{url}"
            );
        }
        assert_eq!(
            check_base_url("https://x.test/api/v1/", false).unwrap(),
            "https://x.test/api/v1"
        );
        let err = check_base_url("https://user:secret@example.com", false)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn failures_are_classified() {
        let headers = HeaderMap::new();
        let cases: [(u16, &str, &str); 10] = [
            (500, r#"{"message":"rate limit exceeded"}"#, "retry-rl"),
            (500, r#"{"message":"Internal Server Error"}"#, "unknown"),
            (502, "", "unknown"),
            (429, "", "retry-rl"),
            (503, "", "retry"),
            (504, "", "unknown"),
            (401, r#"{"code":401,"message":"Unauthorized"}"#, "key"),
            (403, "", "key"),
            (404, r#"{"code":404,"message":"Not Found"}"#, "rejected"),
            (
                422,
                r#"{"message":"Validation failed","errors":{"code":422,"message":"bad","details":"title is required"}}"#,
                "rejected",
            ),
        ];
        for (code, body, want) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            let answer = classify_failure(status, &headers, &service_message(body.as_bytes()), None);
            let got = match &answer {
                Answer::Retry { rate_limited: true, .. } => "retry-rl",
                Answer::Retry { .. } => "retry",
                Answer::Unknown { .. } => "unknown",
                Answer::KeyRefused { .. } => "key",
                Answer::Rejected { .. } => "rejected",
                _ => "other",
            };
            assert_eq!(got, want, "{code} {body}");
        }
        assert_eq!(
            service_message(br#"{"message":"Validation failed","errors":{"code":422,"message":"bad","details":"title is required"}}"#),
            "Validation failed: bad: title is required"
        );
    }

    #[test]
    fn service_text_is_cleaned_and_capped() {
        let long = "x".repeat(SERVICE_TEXT_LIMIT + 12345);
        let cut = format!("{}… (12345 more characters)", "x".repeat(SERVICE_TEXT_LIMIT));
        let spaced = format!("{} {}", "a".repeat(SERVICE_TEXT_LIMIT), "b".repeat(9));
        let spaced_cut = format!("{}… (10 more characters)", "a".repeat(SERVICE_TEXT_LIMIT));
        let wide = "é".repeat(SERVICE_TEXT_LIMIT + 1);
        let wide_cut = format!("{}… (1 more character)", "é".repeat(SERVICE_TEXT_LIMIT));
        let cases: [(&str, &str); 13] = [
            ("", ""),
            ("plain words", "plain words"),
            ("  padded \t ", "padded"),
            (
                "bad\u{1b}[2J\u{1b}[31mRED\nfake: 5 rows: 5 created\r",
                "bad [2J [31mRED fake: 5 rows: 5 created",
            ),
            ("a\r\n\t\x0b\x0cb", "a b"),
            ("nul\0bell\x07del\x7fend", "nul bell del end"),
            ("c1\u{85}next\u{9b}31mcsi\u{80}\u{9f}z", "c1 next 31mcsi z"),
            ("line\u{2028}sep\u{a0}nbsp", "line sep nbsp"),
            ("ok\u{202E}gnirts\u{2066}x\u{200F}", "ok gnirts x"),
            ("\n\r\t\u{1b}", ""),
            (&long, &cut),
            (&spaced, &spaced_cut),
            (&wide, &wide_cut),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_service_text(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn hostile_error_bodies_give_short_clean_messages() {
        let body = serde_json::json!({
            "message": "bad\u{1b}[2J\u{1b}[31mRED\nfake: 5 rows: 5 created\r",
            "errors": {"message": "m".repeat(3_000_000), "details": "\r\n\t"},
        })
        .to_string();
        let message = service_message(body.as_bytes());
        assert!(
            message.starts_with("bad [2J [31mRED fake: 5 rows: 5 created: mmm"),
            "{message:.80}"
        );
        assert!(message.ends_with("… (2999541 more characters)"), "{message}");
        assert!(!message.chars().any(char::is_control), "{message:?}");
        assert!(message.chars().count() < SERVICE_TEXT_LIMIT + 40, "{message}");
        let answer = classify_failure(StatusCode::UNPROCESSABLE_ENTITY, &HeaderMap::new(), &message, None);
        let Answer::Rejected { error, .. } = answer else {
            panic!("{answer:?}");
        };
        assert!(error.starts_with("HTTP 422: bad [2J"), "{error:.80}");

        let html = format!(
            "<html>\r\n<title>502 \u{1b}]0;owned\u{7}</title>\n{}</html>",
            "<p>filler</p>\n".repeat(100_000)
        );
        let message = service_message(html.as_bytes());
        assert!(
            message.starts_with("<html> <title>502 ]0;owned </title> <p>filler</p> "),
            "{message:.80}"
        );
        assert!(message.ends_with(" more characters)"), "{message}");
        assert!(!message.chars().any(char::is_control), "{message:?}");
        assert!(message.chars().count() < SERVICE_TEXT_LIMIT + 40, "{message}");

        for body in ["", " \r\n ", r#"{"message":"\r\n"}"#] {
            let message = service_message(body.as_bytes());
            assert!(
                !message.is_empty() && !message.chars().any(char::is_control),
                "{body:?}: {message:?}"
            );
        }
        assert_eq!(service_message(b""), "(empty body)");
    }

    #[test]
    fn retry_after_in_both_forms() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let got = retry_after(&headers).unwrap();
        assert!(
            got > Duration::from_secs(100) && got <= Duration::from_secs(120),
            "{got:?}"
        );
    }

    #[test]
    fn redirects_name_the_base_url_to_use() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "location",
            HeaderValue::from_static("https://arcus.testsigma.com/api/v1/projects/p/test_runs"),
        );
        let r = redirect(
            "https://test-management.testsigma.com/api/v1",
            "/projects/p/test_runs",
            StatusCode::MOVED_PERMANENTLY,
            &headers,
        );
        assert_eq!(r.suggested_base.as_deref(), Some("https://arcus.testsigma.com/api/v1"));
        assert!(
            r.to_string()
                .contains("use --base-url https://arcus.testsigma.com/api/v1")
        );
    }

    #[test]
    fn created_bodies() {
        let body = br#"{"message":"","data":{"test_run":{"id":"7b2f","human_id":"DEMO-R-1"}}}"#;
        assert_eq!(
            parse_created(body),
            Some(("7b2f".to_string(), Some("DEMO-R-1".to_string())))
        );
        assert_eq!(
            parse_created(br#"{"message":"","data":{"test_run":{"human_id":"X"}}}"#),
            None
        );
        assert_eq!(parse_created(b"<html>"), None);
    }

    #[test]
    fn the_key_is_never_shown() {
        let key = ApiKey::new(" s3cret ").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(key.expose(), "s3cret");
        assert!(ApiKey::new("  ").is_none());
    }

    #[test]
    fn a_connection_gets_half_the_timeout_and_10_s_at_most() {
        let secs = Duration::from_secs_f64;
        assert_eq!(connect_timeout(secs(30.0)), secs(10.0));
        assert_eq!(connect_timeout(secs(8.0)), secs(4.0));
        assert_eq!(connect_timeout(secs(0.5)), secs(0.25));
        for t in [0.1, 1.0, 10.0, 20.0, 300.0] {
            assert!(connect_timeout(secs(t)) < secs(t), "{t}");
        }
    }
}
