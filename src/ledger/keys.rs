//! A row's identity in the ledger: its scope (the service's address and the project) and
//! its key (its human_id, or a hash of its request), and the idempotency key sent with it.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::request::PlannedRow;

/// Each planned row's ledger scope and key, as an import computes them.
pub struct RowKeys {
    base: String,
    /// Rows without a human_id seen so far, by key: identical rows are distinct runs, so
    /// the later copies are numbered. (Rows with one are unique, or they were invalid.)
    occurrences: HashMap<String, usize>,
}

impl RowKeys {
    pub fn new(base: &str) -> RowKeys {
        RowKeys {
            base: base.to_string(),
            occurrences: HashMap::new(),
        }
    }

    pub fn key(&mut self, p: &PlannedRow, body: &[u8]) -> (String, String) {
        let base_key = row_key(p.body.human_id.as_deref(), &p.body.project_id, body);
        let key = if base_key.starts_with("human_id:") {
            base_key
        } else {
            let seen = self.occurrences.entry(base_key).or_insert(0);
            let key = copy_key(p, body, *seen);
            *seen += 1;
            key
        };
        (scope(&self.base, &p.body.project_id), key)
    }
}

/// The key of the `n`-th (from 0) of identical rows without a human_id.
pub fn copy_key(p: &PlannedRow, body: &[u8], n: usize) -> String {
    if n == 0 {
        return row_key(None, &p.body.project_id, body);
    }
    let mut numbered = body.to_vec();
    numbered.extend_from_slice(format!("#{n}").as_bytes());
    row_key(None, &p.body.project_id, &numbered)
}

/// A row's ledger key: `human_id:<id>` when the row has a human id, else
/// `sha256:<hex>` over the project id, a 0 byte and the canonical request body.
/// Stable across versions (SHA-256, never `DefaultHasher`).
pub fn row_key(human_id: Option<&str>, project_id: &str, canonical_body: &[u8]) -> String {
    match human_id.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => format!("human_id:{id}"),
        None => {
            let mut hasher = Sha256::new();
            hasher.update(project_id.as_bytes());
            hasher.update([0u8]);
            hasher.update(canonical_body);
            format!("sha256:{}", hex::encode(hasher.finalize()))
        }
    }
}

/// Where rows are created: the normalised base URL plus `/projects/<project>`. Rows done
/// against a sandbox are not done for the real service. The scheme and host are
/// lower-cased, a default port (`:443` for https, `:80` for http) and trailing slashes
/// are dropped, and so is any `user:password@`, which must never reach the state file.
pub fn scope(base_url: &str, project_id: &str) -> String {
    format!(
        "{}/projects/{}",
        normalise_base_url(base_url),
        project_id.trim().to_ascii_lowercase()
    )
}

fn normalise_base_url(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.trim_end_matches('/').to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    let host = match default_port.and_then(|port| host.strip_suffix(port)) {
        Some(bare) => bare.to_string(),
        None => host,
    };
    format!("{scheme}://{host}{}", path.trim_end_matches('/'))
}

/// What a `created` line keeps of the request body: its SHA-256 (32 hex digits), to tell
/// a later run that the row has changed since it was sent.
pub fn body_hash(body: &[u8]) -> String {
    let mut hex = hex::encode(Sha256::digest(body));
    hex.truncate(32);
    hex
}

/// The `Idempotency-Key` header for a row: the first 32 hex digits of SHA-256 over the
/// scope, a 0 byte and the row's key. The same row in the same scope always gets the
/// same value.
pub fn idempotency_key(scope: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(scope.as_bytes());
    hasher.update([0u8]);
    hasher.update(key.as_bytes());
    let mut hex = hex::encode(hasher.finalize());
    hex.truncate(32);
    hex
}
