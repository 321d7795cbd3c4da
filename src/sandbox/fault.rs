//! The sandbox's injectable faults on the create endpoint, and the `--fault SPEC` grammar.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One way the create endpoint can misbehave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection (TCP reset) without an answer; nothing is created.
    ResetBeforeRead,
    /// Create the run, then reset the connection without an answer.
    ResetAfterRead,
    /// Create the run and answer normally after this delay (client timeouts).
    Slow(Duration),
    /// Create the run, then send a 200 whose body stops half way and close the connection.
    TruncatedBody,
    /// Create the run, then answer 200 with an HTML page.
    NonJson,
    /// Create the run, then answer 200 with JSON that has no `data.test_run.id`.
    OkWithoutId,
    /// Create the run, then answer 500 `Internal Server Error`, as a service that fails
    /// after its work is done would.
    ErrorAfterCreate,
    /// Answer 503 with `Retry-After: N` (seconds); nothing is created.
    RetryAfterSeconds(u64),
    /// Answer 429 with `Retry-After` as an HTTP date N seconds ahead; nothing is created.
    RetryAfterDate(u64),
    /// Answer 308 with `Location` = this base URL + the request's path below `/api/v1`;
    /// nothing is created.
    RedirectTo(String),
}

/// A fault and the probability (0 to 1) that a create request meets it.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    pub fault: Fault,
    pub probability: f64,
}

/// Why a `--fault` spec was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FaultSpecError {
    #[error(
        "--fault `{spec}`: unknown fault `{kind}`; expected one of reset-before, reset-after, \
         slow=DURATION, truncated, non-json, no-id, error-after, retry-after=SECS, retry-after-date=SECS, \
         redirect=URL, each optionally followed by :PROBABILITY"
    )]
    UnknownKind { spec: String, kind: String },
    #[error(
        "--fault `{spec}`: probability `{text}` must be a number from 0 to 1 (a redirect URL \
         that ends in a port needs an explicit probability, e.g. redirect=http://host:8080:1)"
    )]
    Probability { spec: String, text: String },
    #[error("--fault `{spec}`: `{kind}` needs a value, e.g. {example}")]
    MissingValue {
        spec: String,
        kind: String,
        example: &'static str,
    },
    #[error("--fault `{spec}`: `{kind}` takes no `=VALUE`")]
    UnexpectedValue { spec: String, kind: String },
    #[error("--fault `{spec}`: `{value}` is not a valid value for `{kind}`; expected {expected}")]
    BadValue {
        spec: String,
        kind: String,
        value: String,
        expected: &'static str,
    },
}

/// Parses a `--fault` spec: `KIND[=VALUE][:PROBABILITY]`.
///
/// | spec | fault |
/// |---|---|
/// | `reset-before` | [`Fault::ResetBeforeRead`] |
/// | `reset-after` | [`Fault::ResetAfterRead`] |
/// | `slow=5000ms`, `slow=5s` | [`Fault::Slow`] (the unit is required) |
/// | `truncated` | [`Fault::TruncatedBody`] |
/// | `non-json` | [`Fault::NonJson`] |
/// | `no-id` | [`Fault::OkWithoutId`] |
/// | `error-after` | [`Fault::ErrorAfterCreate`] |
/// | `retry-after=2` | [`Fault::RetryAfterSeconds`] |
/// | `retry-after-date=2` | [`Fault::RetryAfterDate`] |
/// | `redirect=http://127.0.0.2:9/api/v1` | [`Fault::RedirectTo`] |
///
/// The probability is the text after the last `:` when that text is a decimal number
/// (`0.2`, `1`, `.5`), and 1.0 otherwise; so `redirect=http://h:9/api/v1` is certain,
/// while a URL that ends in a port needs an explicit probability
/// (`redirect=http://h:8080:1`). Kinds are case-insensitive.
pub fn parse_fault(spec: &str) -> Result<FaultRule, String> {
    spec.parse::<FaultRule>().map_err(|e| e.to_string())
}

impl FromStr for FaultRule {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let trimmed = spec.trim();
        let (head, probability) = split_probability(trimmed).ok_or_else(|| {
            let text = trimmed.rsplit(':').next().unwrap_or(trimmed);
            FaultSpecError::Probability {
                spec: spec.to_owned(),
                text: text.to_owned(),
            }
        })?;
        let (kind, value) = match head.split_once('=') {
            Some((kind, value)) => (kind.trim(), Some(value.trim())),
            None => (head.trim(), None),
        };
        let fault = parse_kind(spec, &kind.to_ascii_lowercase(), value)?;
        Ok(FaultRule { fault, probability })
    }
}

/// `None` when the text after the last `:` is a number outside 0..=1.
fn split_probability(spec: &str) -> Option<(&str, f64)> {
    let Some((head, tail)) = spec.rsplit_once(':') else {
        return Some((spec, 1.0));
    };
    let numeric = !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !numeric {
        return Some((spec, 1.0));
    }
    match tail.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Some((head, p)),
        _ => None,
    }
}

fn parse_kind(spec: &str, kind: &str, value: Option<&str>) -> Result<Fault, FaultSpecError> {
    let bad = |value: &str, expected: &'static str| FaultSpecError::BadValue {
        spec: spec.to_owned(),
        kind: kind.to_owned(),
        value: value.to_owned(),
        expected,
    };
    let needs = |example: &'static str| FaultSpecError::MissingValue {
        spec: spec.to_owned(),
        kind: kind.to_owned(),
        example,
    };
    let plain = |fault: Fault| match value {
        None => Ok(fault),
        Some(_) => Err(FaultSpecError::UnexpectedValue {
            spec: spec.to_owned(),
            kind: kind.to_owned(),
        }),
    };
    const SECS: &str = "whole seconds, e.g. 2";
    match kind {
        "reset-before" => plain(Fault::ResetBeforeRead),
        "reset-after" => plain(Fault::ResetAfterRead),
        "truncated" => plain(Fault::TruncatedBody),
        "non-json" => plain(Fault::NonJson),
        "no-id" => plain(Fault::OkWithoutId),
        "error-after" => plain(Fault::ErrorAfterCreate),
        "slow" => {
            let value = value.ok_or_else(|| needs("slow=5000ms:0.1"))?;
            parse_duration(value)
                .map(Fault::Slow)
                .ok_or_else(|| bad(value, "a duration with a unit, e.g. 5000ms or 5s"))
        }
        "retry-after" => {
            let value = value.ok_or_else(|| needs("retry-after=2:0.1"))?;
            parse_seconds(value)
                .map(Fault::RetryAfterSeconds)
                .ok_or_else(|| bad(value, SECS))
        }
        "retry-after-date" => {
            let value = value.ok_or_else(|| needs("retry-after-date=2:0.1"))?;
            parse_seconds(value)
                .map(Fault::RetryAfterDate)
                .ok_or_else(|| bad(value, SECS))
        }
        "redirect" => {
            let value = value.ok_or_else(|| needs("redirect=http://127.0.0.2:9/api/v1:1"))?;
            parse_base_url(value)
                .map(Fault::RedirectTo)
                .ok_or_else(|| bad(value, "an http:// or https:// base URL, e.g. http://127.0.0.2:9/api/v1"))
        }
        _ => Err(FaultSpecError::UnknownKind {
            spec: spec.to_owned(),
            kind: kind.to_owned(),
        }),
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')?.parse().ok().map(Duration::from_secs)
}

fn parse_seconds(text: &str) -> Option<u64> {
    text.strip_suffix('s').unwrap_or(text).parse().ok()
}

/// The base URL without a trailing `/`, so the request path can be appended as is.
fn parse_base_url(text: &str) -> Option<String> {
    let uri: axum::http::Uri = text.parse().ok()?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    (scheme_ok && uri.authority().is_some() && uri.query().is_none()).then(|| text.trim_end_matches('/').to_owned())
}

impl fmt::Display for FaultRule {
    /// The canonical spec, which [`parse_fault`] reads back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fault {
            Fault::ResetBeforeRead => f.write_str("reset-before")?,
            Fault::ResetAfterRead => f.write_str("reset-after")?,
            Fault::Slow(d) => write!(f, "slow={}ms", d.as_millis())?,
            Fault::TruncatedBody => f.write_str("truncated")?,
            Fault::NonJson => f.write_str("non-json")?,
            Fault::OkWithoutId => f.write_str("no-id")?,
            Fault::ErrorAfterCreate => f.write_str("error-after")?,
            Fault::RetryAfterSeconds(n) => write!(f, "retry-after={n}")?,
            Fault::RetryAfterDate(n) => write!(f, "retry-after-date={n}")?,
            Fault::RedirectTo(url) => write!(f, "redirect={url}")?,
        }
        write!(f, ":{}", self.probability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(fault: Fault, probability: f64) -> FaultRule {
        FaultRule { fault, probability }
    }

    #[test]
    fn parses_every_documented_spec() {
        let cases = [
            ("reset-before:0.2", rule(Fault::ResetBeforeRead, 0.2)),
            ("reset-after:0.2", rule(Fault::ResetAfterRead, 0.2)),
            ("slow=5000ms:0.1", rule(Fault::Slow(Duration::from_millis(5000)), 0.1)),
            ("slow=3s", rule(Fault::Slow(Duration::from_secs(3)), 1.0)),
            ("truncated:0.1", rule(Fault::TruncatedBody, 0.1)),
            ("non-json:0.1", rule(Fault::NonJson, 0.1)),
            ("no-id:0.1", rule(Fault::OkWithoutId, 0.1)),
            ("retry-after=2:0.1", rule(Fault::RetryAfterSeconds(2), 0.1)),
            ("retry-after-date=2:0.1", rule(Fault::RetryAfterDate(2), 0.1)),
            (
                "redirect=http://127.0.0.2:9/api/v1:1",
                rule(Fault::RedirectTo("http://127.0.0.2:9/api/v1".into()), 1.0),
            ),
            (
                "redirect=http://127.0.0.2:9/api/v1/",
                rule(Fault::RedirectTo("http://127.0.0.2:9/api/v1".into()), 1.0),
            ),
            ("reset-before", rule(Fault::ResetBeforeRead, 1.0)),
            (" Truncated:.5 ", rule(Fault::TruncatedBody, 0.5)),
            ("no-id:0", rule(Fault::OkWithoutId, 0.0)),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_fault(spec), Ok(want), "spec {spec}");
        }
    }

    #[test]
    fn refuses_bad_specs_naming_the_problem() {
        let cases = [
            ("explode", "unknown fault `explode`"),
            ("reset-before:1.5", "probability `1.5`"),
            ("redirect=http://h:8080", "probability `8080`"),
            ("slow", "needs a value"),
            ("slow=5000", "a duration with a unit"),
            ("retry-after=soon", "whole seconds"),
            ("truncated=3", "takes no `=VALUE`"),
            ("redirect=ftp://h/api/v1", "http:// or https://"),
            ("redirect=/api/v1", "http:// or https://"),
        ];
        for (spec, want) in cases {
            let err = parse_fault(spec).expect_err(spec);
            assert!(err.contains(want), "spec {spec}: {err}");
            assert!(err.contains(spec.trim()), "spec {spec} not quoted: {err}");
        }
    }

    #[test]
    fn display_reads_back_to_the_same_rule() {
        let rules = [
            rule(Fault::Slow(Duration::from_millis(250)), 0.25),
            rule(Fault::RedirectTo("http://127.0.0.2:9/api/v1".into()), 1.0),
            rule(Fault::RetryAfterDate(7), 0.5),
        ];
        for want in rules {
            assert_eq!(parse_fault(&want.to_string()), Ok(want));
        }
    }
}
