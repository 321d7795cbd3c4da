//! The API key kept out of everything the tool prints or writes, whatever argument it was
//! pasted into: every key the run knows (TESTSIGMA_API_KEY, read before the command line is
//! parsed; a key file's; the config file's) is registered here, and every line on stderr
//! and every report, failed-rows, plan and summary file is scrubbed on its way out. A key
//! is looked for as it is, as text cleaning leaves it (a tab turned into a space) and as
//! JSON escapes it.

use std::borrow::Cow;
use std::sync::RwLock;

/// Shorter is no real key, and scrubbing it would eat ordinary words (`key`, `sandbox`).
const MIN_SECRET_CHARS: usize = 10;

const MASK: &str = "***";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Keeps `secret` out of everything written from now on.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_SECRET_CHARS {
        return;
    }
    let Ok(mut secrets) = SECRETS.write() else { return };
    for form in forms(secret) {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // The longest first, so a form that holds another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// The secret as written, as text cleaning leaves it (every run of blanks and control
/// characters one space), and as it stands inside a JSON string.
fn forms(secret: &str) -> Vec<String> {
    let cleaned = secret
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    [secret.to_string(), cleaned, json]
        .into_iter()
        .filter(|form| form.chars().count() >= MIN_SECRET_CHARS)
        .collect()
}

/// `text` with every registered key masked.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Ok(secrets) = SECRETS.read() else {
        return Cow::Borrowed(text);
    };
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// `bytes` with every registered key masked; bytes that are not UTF-8 are searched as they
/// are and left as they are where no key is.
pub fn scrub_bytes(mut bytes: Vec<u8>) -> Vec<u8> {
    scrub_in_place(&mut bytes);
    bytes
}

/// Masks every registered key in `buffer`. Cheap when there is none to mask (a plan line
/// of a million-row dry run): one substring search per key, no copy.
pub fn scrub_in_place(buffer: &mut Vec<u8>) {
    let Ok(secrets) = SECRETS.read() else { return };
    for secret in secrets.iter() {
        if memchr::memmem::find(buffer, secret.as_bytes()).is_some() {
            *buffer = replace_bytes(buffer, secret.as_bytes(), MASK.as_bytes());
        }
    }
}

fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = memchr::memmem::find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_masked_as_written_cleaned_and_json_escaped_and_short_words_are_left() {
        register("tsk_redact\tunit-9f3e");
        register("key");
        for (text, want) in [
            ("cannot read tsk_redact\tunit-9f3e: no", "cannot read ***: no"),
            ("`tsk_redact unit-9f3e` is not a UUID", "`***` is not a UUID"),
            (r#"{"error":"tsk_redact\tunit-9f3e"}"#, r#"{"error":"***"}"#),
            ("--api-key-file needs a key", "--api-key-file needs a key"),
        ] {
            assert_eq!(scrub(text), want, "{text:?}");
            assert_eq!(scrub_bytes(text.as_bytes().to_vec()), want.as_bytes(), "{text:?}");
        }
        let binary = b"\xff\xfetsk_redact unit-9f3e\xff".to_vec();
        assert_eq!(scrub_bytes(binary), b"\xff\xfe***\xff");
    }
}
