//! The base URL: what is accepted (https anywhere, http only to this machine), and a
//! redirect's advice on the base URL to use instead.

use std::fmt;

use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};

use super::ApiError;

pub const DEFAULT_BASE_URL: &str = "https://test-management.testsigma.com/api/v1";

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

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(crate) fn redirect(base: &str, path: &str, status: StatusCode, headers: &HeaderMap) -> Redirect {
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

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

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
}
