//! The HTTP client: the one create call, the read-only calls with their retries, the one
//! pacer every request takes its turn from, and the key scrubbed from everything the
//! service says back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderValue;

use super::answer::{
    Answer, AnswerKind, BodyError, MAX_ANSWER_BYTES, MAX_LIST_BYTES, classify_failure, clean_service_text,
    is_rate_limited, parse_created, read_body, request_id, retry_after, service_message, snippet,
};
use super::pace::Pacer;
use super::retry::{MAX_RATE_LIMITED, MAX_WAIT, backoff, busy_too_long, gave_up, jitter, wait_too_long};
use super::url::{Redirect, is_loopback, redirect};
use super::{ApiError, ApiKey, User, error_chain};

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

/// How long an idle connection is kept for the next request.
const POOL_IDLE: Duration = Duration::from_secs(4);

pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
    timeout: Duration,
    /// How often a read-only GET is tried again after a transient failure.
    read_retries: u32,
    /// GET requests made so far, retries included: each counts against the service's window.
    reads: std::sync::atomic::AtomicUsize,
    /// The one pace of every request to the service: the service counts reads and creates
    /// against one limit, so they take their turns from one pacer.
    pacer: Pacer,
}

/// `--rate`'s default, the pace of a client no one gave one (`check`).
pub(crate) const DEFAULT_RATE: f64 = 8.0;

impl ApiClient {
    /// `base` must have passed [`check_base_url`]. `roots`: authorities trusted besides the
    /// built-in ones (`--ca-cert`).
    pub fn new(
        base: &str,
        key: ApiKey,
        timeout: Duration,
        roots: Vec<reqwest::Certificate>,
    ) -> Result<ApiClient, ApiError> {
        let mut builder = reqwest::Client::builder();
        // A loopback service (the sandbox, a tunnel) is never reached through a proxy: the
        // proxy would be another host, and to an http:// base URL it would get the key in
        // clear. Elsewhere HTTP(S)_PROXY, ALL_PROXY and NO_PROXY apply as usual: to an
        // https:// base URL a proxy only tunnels (CONNECT), and an http:// one off this
        // machine needs --allow-insecure whatever the path.
        if url::Url::parse(base).is_ok_and(|url| is_loopback(&url)) {
            builder = builder.no_proxy();
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
        let http = builder
            .user_agent(concat!("testsigma-import/", env!("CARGO_PKG_VERSION")))
            // Never follow: a cross-host redirect would drop (or worse, leak) the key, and a
            // POST turned into a GET creates nothing while looking like success.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(connect_timeout(timeout))
            // Under the 5 s many servers keep an idle connection (Node's default): one they
            // closed, reused, fails after the request went out and leaves its row `unknown`.
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .map_err(|e| ApiError::Client(error_chain(&e)))?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            key,
            timeout,
            read_retries: 5,
            reads: std::sync::atomic::AtomicUsize::new(0),
            pacer: Pacer::new(DEFAULT_RATE),
        })
    }

    /// Every request at most `rate` per second (`--rate`), reads and creates together: the
    /// lookups before an upload share the service's limit with it.
    pub fn paced(mut self, rate: f64) -> ApiClient {
        self.pacer = Pacer::new(rate);
        self
    }

    /// The pace every request takes its turn from.
    pub(crate) fn pacer(&self) -> &Pacer {
        &self.pacer
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

    fn scrub_answer(&self, mut answer: Answer) -> Answer {
        answer.error = answer.error.map(|e| self.scrub(e));
        if let AnswerKind::Redirected(r) = answer.kind {
            answer.kind = AnswerKind::Redirected(self.scrub_redirect(r));
        }
        answer
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
            ApiError::Untrusted { what, message } => ApiError::Untrusted {
                what,
                message: self.scrub(message),
            },
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
        let path = format!("/projects/{project_id}/test_runs");
        let answer = self
            .send_body(reqwest::Method::POST, &path, body, idempotency_key)
            .await;
        self.scrub_answer(answer)
    }

    /// `PUT /projects/{project_id}/test_runs/{run_id}` with the create's body: answered like
    /// the create.
    pub async fn update_test_run(
        &self,
        project_id: &str,
        run_id: &str,
        body: Vec<u8>,
        idempotency_key: &str,
    ) -> Answer {
        let path = format!("/projects/{project_id}/test_runs/{run_id}");
        let answer = self.send_body(reqwest::Method::PUT, &path, body, idempotency_key).await;
        self.scrub_answer(answer)
    }

    async fn send_body(&self, method: reqwest::Method, path: &str, body: Vec<u8>, idempotency_key: &str) -> Answer {
        let auth = match self.auth() {
            Ok(a) => a,
            // Made here, before any request: nothing left this machine.
            Err(e) => return Answer::without_status(AnswerKind::Rejected, e.to_string(), false),
        };
        let sent = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header("Idempotency-Key", idempotency_key)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => self.read_answer(response, path).await,
            Err(e) => self.transport_answer(&e),
        }
    }

    /// What a create's HTTP answer means for its row.
    async fn read_answer(&self, response: reqwest::Response, path: &str) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = request_id(&headers).map(|r| clean_service_text(&self.scrub(r)));
        let code = status.as_u16();
        if status.is_redirection() {
            let redirect = redirect(&self.base, path, status, &headers);
            let error = redirect.to_string();
            return Answer::from_service(AnswerKind::Redirected(redirect), code, Some(error), request_id);
        }
        let bytes = match read_body(response, MAX_ANSWER_BYTES).await {
            // Scrubbed whole, before any message cuts it short and splits the key.
            Ok(b) => self.scrub_body(b),
            Err(e) if status.is_success() => {
                let error = format!("the answer's body could not be read: {e}");
                return Answer::from_service(AnswerKind::Unknown, code, Some(error), request_id);
            }
            Err(e) => return classify_failure(status, &headers, &format!("body unreadable: {e}"), request_id),
        };
        if !status.is_success() {
            return classify_failure(status, &headers, &service_message(&bytes), request_id);
        }
        match parse_created(&bytes) {
            Some((id, human_id)) => Answer::from_service(AnswerKind::Created { id, human_id }, code, None, request_id),
            None => {
                let error = format!(
                    "HTTP {code} but the body holds no test run id, so the run may exist: {}",
                    snippet(&bytes)
                );
                Answer::from_service(AnswerKind::Unknown, code, Some(error), request_id)
            }
        }
    }

    fn transport_answer(&self, e: &reqwest::Error) -> Answer {
        let detail = error_chain(e);
        if let Some(message) = untrusted(e) {
            return Answer::without_status(AnswerKind::Untrusted, message, false);
        }
        if e.is_connect() {
            // The connection was never made, so the request cannot have been acted on.
            let retry = AnswerKind::Retry {
                retry_after: None,
                rate_limited: false,
            };
            return Answer::without_status(retry, format!("could not connect: {detail}"), false);
        }
        let error = if e.is_timeout() {
            format!(
                "no answer within {} s (--timeout); the run may exist",
                self.timeout.as_secs_f64()
            )
        } else {
            format!("the connection failed after sending: {detail}")
        };
        Answer::without_status(AnswerKind::Unknown, error, true)
    }

    /// Retry a failed GET at most `retries` times (`--max-retries`); the default is 5.
    pub fn with_read_retries(mut self, retries: u32) -> ApiClient {
        self.read_retries = retries;
        self
    }

    /// A GET is safe to repeat. It takes its turn from the pacer like a create and is
    /// retried by the same rules: a rate-limit refusal (the 500 that says so, a 429) slows
    /// everyone down and is tried again without counting against `--max-retries`; other
    /// transient failures (502/503/504, 408, a dropped connection, a cut-short body) are
    /// retried with backoff; a `Retry-After` is honoured up to [`MAX_WAIT`].
    pub(super) async fn get_json(&self, path: &str, what: &str) -> Result<serde_json::Value, ApiError> {
        let mut tries = ReadTries::default();
        loop {
            self.pacer.acquire().await;
            let sent_at = Instant::now();
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let failure = match self.fetch_json(path, what).await {
                Ok(value) => {
                    self.pacer.on_success();
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            let wait = self.read_wait(failure, &mut tries, sent_at, what)?;
            tracing::info!(
                what,
                retry = tries.retries,
                refusals = tries.refusals,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// How long to wait before a failed GET is tried again, or the error it ends with.
    fn read_wait(
        &self,
        failure: ReadFailure,
        tries: &mut ReadTries,
        sent_at: Instant,
        what: &str,
    ) -> Result<Duration, ApiError> {
        let error = self.scrub_error(failure.error);
        if let Some(asked) = failure.retry_after.filter(|wait| *wait > MAX_WAIT) {
            return Err(error.with_note(&format!("; {}", wait_too_long(asked))));
        }
        if failure.rate_limited {
            tries.refusals += 1;
            self.pacer.on_rate_limited(sent_at, failure.retry_after);
            let refused_for = self.pacer.refused_for();
            if refused_for > MAX_WAIT {
                return Err(error.with_note(&format!("; {}", busy_too_long(refused_for))));
            }
            if tries.refusals > MAX_RATE_LIMITED {
                return Err(error.with_note(&format!(" ({MAX_RATE_LIMITED} rate-limit refusals)")));
            }
            // The pacer has slowed everyone down; a little jitter spreads the retries.
            return Ok(failure
                .retry_after
                .unwrap_or_else(|| jitter(Duration::from_millis(250))));
        }
        if !failure.transient || tries.retries >= self.read_retries {
            return Err(if failure.transient && tries.retries > 0 {
                error.with_note(&gave_up(tries.retries))
            } else {
                error
            });
        }
        tries.retries += 1;
        if let Some(wait) = failure.retry_after {
            self.pacer.pause(wait);
        }
        tracing::debug!(what, error = %error, "read failed");
        Ok(failure.retry_after.unwrap_or_else(|| backoff(tries.retries)))
    }

    async fn fetch_json(&self, path: &str, what: &str) -> Result<serde_json::Value, ReadFailure> {
        let transport = |e: reqwest::Error| match untrusted(&e) {
            Some(message) => ReadFailure::fatal(ApiError::Untrusted {
                what: what.to_string(),
                message,
            }),
            None => ReadFailure {
                error: if e.is_connect() {
                    ApiError::Unreachable {
                        base: self.base.clone(),
                        message: error_chain(&e),
                    }
                } else {
                    ApiError::Transport {
                        what: what.to_string(),
                        message: error_chain(&e),
                    }
                },
                transient: true,
                rate_limited: false,
                retry_after: None,
            },
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
            rate_limited: false,
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
            let message = service_message(&bytes);
            return Err(ReadFailure {
                rate_limited: is_rate_limited(status.as_u16(), &message),
                error: ApiError::Status {
                    what: what.to_string(),
                    status: status.as_u16(),
                    message,
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
            rate_limited: false,
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

/// When `e` is a TLS certificate the client does not trust (an unknown authority, an
/// expired or misnamed certificate): what failed, and the flag that fixes a proxy's.
/// Such an error is no network blip: retrying meets the same certificate.
fn untrusted(e: &reqwest::Error) -> Option<String> {
    let tls = rustls_error(e)?;
    matches!(
        tls,
        rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_)
    )
    .then(|| {
        format!(
            "the service's TLS certificate is not trusted ({tls}); if a proxy that inspects TLS sits in between, trust its authority with --ca-cert FILE (or TESTSIGMA_CA_CERT)"
        )
    })
}

/// The TLS error somewhere in `error`'s causes. It travels inside io::Errors (one inside
/// another), whose source() skips the error they wrap: those are opened by hand.
fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let wrapped = error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| rustls_error(inner));
    wrapped.or_else(|| error.source().and_then(rustls_error))
}

impl ApiError {
    /// The error, `note` added to its message (why the retries ended).
    fn with_note(self, note: &str) -> ApiError {
        let note = |message: String| format!("{message}{note}");
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
            ApiError::Unreachable { base, message } => ApiError::Unreachable {
                base,
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
    /// Refused for the service's rate limit: "later", not "no".
    rate_limited: bool,
    retry_after: Option<Duration>,
}

impl ReadFailure {
    fn fatal(error: ApiError) -> ReadFailure {
        ReadFailure {
            error,
            transient: false,
            rate_limited: false,
            retry_after: None,
        }
    }
}

/// One GET's tries so far: retries after transient failures (bounded by `--max-retries`)
/// and refusals for the rate limit (bounded by [`MAX_RATE_LIMITED`] and [`MAX_WAIT`]).
#[derive(Default)]
struct ReadTries {
    retries: u32,
    refusals: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

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
