//! The HTTP client for the Testsigma Test Management API: the base URL rules, the one
//! create call, the read-only calls, and what each answer means for a row. It classifies;
//! `upload/` decides what to do about it.

mod answer;
mod client;
pub mod connect;
pub(crate) mod pace;
pub(crate) mod retry;
pub mod runs;
pub mod test_cases;
mod url;
pub mod users;

pub use answer::{Answer, AnswerKind};
pub use client::ApiClient;
pub use connect::{ServiceSettings, can_connect, connect};
pub use url::{DEFAULT_BASE_URL, Redirect, check_base_url};

use std::fmt;

use serde::Deserialize;

/// The bearer key. Never printed: `Debug` and `Display` show a placeholder.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key, trimmed; from now on it is scrubbed from everything the tool writes.
    pub fn new(key: &str) -> Option<ApiKey> {
        let key = key.trim();
        crate::redact::register(key);
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
    #[error("{what}: {message}")]
    Untrusted { what: String, message: String },
    #[error(
        "no connection to {base} could be made (could not connect: {message}); the run stopped. Check --base-url and the network."
    )]
    Unreachable { base: String, message: String },
    #[error("{what}: the answer could not be read ({message}); nothing is concluded from it")]
    Unreadable { what: String, message: String },
}

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
    fn the_key_is_never_shown() {
        let key = ApiKey::new(" s3cret ").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(key.expose(), "s3cret");
        assert!(ApiKey::new("  ").is_none());
    }
}
