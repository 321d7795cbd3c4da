//! What an answer of the service means for its row: created, worth another try,
//! certainly refused, a refused key, a redirect, or unknown (the run may exist). The
//! service's own words are read from either of its error shapes and made safe to show.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::error_chain;
use super::url::Redirect;

/// What one create (or update) request came to: its kind, and what every kind carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub kind: AnswerKind,
    /// The HTTP status the service answered with; `None` when no answer came.
    pub status: Option<u16>,
    /// What went wrong, in words fit for the report; `None` for a created run.
    pub error: Option<String>,
    pub request_id: Option<String>,
    /// Whether a connection to the service was made. Without one no request left this
    /// machine: the row was certainly not created, and no request counts as sent.
    pub connected: bool,
}

/// What an answer means for its row.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerKind {
    Created {
        id: String,
        human_id: Option<String>,
    },
    /// Certainly not created, and worth trying again (connection refused, 429, 503, rate limit, ...).
    Retry {
        retry_after: Option<Duration>,
        rate_limited: bool,
    },
    /// Certainly not created; trying again would get the same answer.
    Rejected,
    /// 401/403: the key is wrong, and every row would fail.
    KeyRefused,
    /// Sent, but no usable answer: the run may exist.
    Unknown,
    /// The service's TLS certificate is not trusted: no request left this machine, and
    /// every other would meet the same (a proxy that inspects TLS wants `--ca-cert`).
    Untrusted,
    Redirected(Redirect),
}

impl Answer {
    /// An answer the service gave, with its status.
    pub(crate) fn from_service(
        kind: AnswerKind,
        status: u16,
        error: Option<String>,
        request_id: Option<String>,
    ) -> Answer {
        Answer {
            kind,
            status: Some(status),
            error,
            request_id,
            connected: true,
        }
    }

    /// An answer with no HTTP status: no usable answer came, or none was asked for.
    pub(crate) fn without_status(kind: AnswerKind, error: String, connected: bool) -> Answer {
        Answer {
            kind,
            status: None,
            error: Some(error),
            request_id: None,
            connected,
        }
    }
}

/// A non-2xx, non-3xx answer. Most say the run was not created; retry only what is worth
/// retrying. A server error that is not the rate limit may come after the run was made.
pub(crate) fn classify_failure(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    request_id: Option<String>,
) -> Answer {
    let code = status.as_u16();
    let error = format!("HTTP {code}: {message}");
    let retry_after = retry_after(headers);
    let rate_limited = is_rate_limited(code, message);
    let (kind, error) = match code {
        401 | 403 => (AnswerKind::KeyRefused, error),
        408 | 429 | 503 => (
            AnswerKind::Retry {
                retry_after,
                rate_limited,
            },
            error,
        ),
        500 if rate_limited => (
            AnswerKind::Retry {
                retry_after,
                rate_limited,
            },
            error,
        ),
        // Any other 500, a bad gateway or a gateway timeout: the service may have created
        // the run before it failed, so sending it again could create it twice.
        500 | 502 | 504 => (AnswerKind::Unknown, format!("{error}; the run may exist")),
        _ => (AnswerKind::Rejected, error),
    };
    Answer::from_service(kind, code, Some(error), request_id)
}

/// Whether an answer is the service's rate limit: a 429, or (as the real service answers
/// it) a 500 whose message says so.
pub(crate) fn is_rate_limited(code: u16, message: &str) -> bool {
    code == 429 || (code == 500 && message.to_ascii_lowercase().contains("rate limit"))
}

pub(crate) fn parse_created(bytes: &[u8]) -> Option<(String, Option<String>)> {
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
pub(crate) const MAX_ANSWER_BYTES: usize = 1 << 20;
/// The same for the lists read before sending (`GET /users`): room for many thousands.
pub(crate) const MAX_LIST_BYTES: usize = 64 << 20;

/// Why an answer's body was not read whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("{}", error_chain(.0))]
    Transport(reqwest::Error),
    #[error("it is over {} MB, more than any answer of this API needs; it was not read", .0 >> 20)]
    TooLarge(usize),
}

/// The body, up to `limit` bytes; past that, [`BodyError::TooLarge`] without reading on.
pub(crate) async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
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
pub(crate) fn snippet(bytes: &[u8]) -> String {
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

pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

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
            let got = match &answer.kind {
                AnswerKind::Retry { rate_limited: true, .. } => "retry-rl",
                AnswerKind::Retry { .. } => "retry",
                AnswerKind::Unknown => "unknown",
                AnswerKind::KeyRefused => "key",
                AnswerKind::Rejected => "rejected",
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
        let (AnswerKind::Rejected, Some(error)) = (&answer.kind, &answer.error) else {
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
}
