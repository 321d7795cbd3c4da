//! A row's identity in the ledger: its scope (the service's address and the project) and
//! its key (`--key`: its human_id, or a hash of the fields that identify it), the hashes
//! that tell a later run what changed, and the idempotency key sent with it.

use std::hash::{BuildHasher, Hasher, RandomState};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::read::mapping::{Field, MappingError};
use crate::request::PlannedRow;

/// The fields that identify a row across runs (`--key`): by default its human_id when the
/// file has that column, else its title and start date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec(Vec<Field>);

impl KeySpec {
    /// `--key FIELDS`: field names or aliases, comma-separated, each once.
    pub fn parse(text: &str) -> Result<KeySpec, String> {
        let mut fields = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let field: Field = name.parse().map_err(|e: MappingError| e.to_string())?;
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        if fields.is_empty() {
            return Err(
                "give the fields that identify a row, e.g. --key human_id or --key title,start_date".to_owned(),
            );
        }
        Ok(KeySpec(fields))
    }

    /// The key of a file whose headers map to `has_human_id` or not.
    pub fn default_for(has_human_id: bool) -> KeySpec {
        KeySpec(if has_human_id {
            vec![Field::HumanId]
        } else {
            vec![Field::Title, Field::StartDate]
        })
    }

    pub fn fields(&self) -> &[Field] {
        &self.0
    }

    /// The fields by name, for messages: `title, start_date`.
    pub fn describe(&self) -> String {
        self.0.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    }
}

/// What a row is known by: its human_id alone, or the values of some fields.
enum KeyBy<'a> {
    HumanId(&'a str),
    Fields(&'a [Field]),
}

fn key_by<'a>(spec: &'a KeySpec, p: &'a PlannedRow) -> KeyBy<'a> {
    let human_id = p.body.human_id.as_deref().map(str::trim).filter(|id| !id.is_empty());
    match (spec.fields(), human_id) {
        ([Field::HumanId], Some(id)) => KeyBy::HumanId(id),
        ([Field::HumanId], None) => KeyBy::Fields(&[Field::Title, Field::StartDate]),
        (fields, _) => KeyBy::Fields(fields),
    }
}

/// A row's ledger key. By its human_id alone, `human_id:<id>` (a row without one is known
/// by its title and start date instead); by other fields, their names and a SHA-256 over
/// their values: `title+start_date:<32 hex>`. Stable across versions.
pub fn row_key(spec: &KeySpec, p: &PlannedRow) -> String {
    let fields = match key_by(spec, p) {
        KeyBy::HumanId(id) => return format!("human_id:{id}"),
        KeyBy::Fields(fields) => fields,
    };
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update(field_text(p, *field).as_bytes());
        hasher.update([0u8]);
    }
    let mut hex = hex::encode(hasher.finalize());
    hex.truncate(32);
    let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
    format!("{}:{hex}", names.join("+"))
}

/// Row keys of one run as 64-bit fingerprints, to tell rows with one key apart in memory
/// that does not grow with the rows' size. Two rows with one [`row_key`] get one
/// fingerprint; two with different keys share one with odds of about n² / 2⁶⁵ for n rows
/// (3 in 10⁸ for a million), and then the duplicate message names a row whose key visibly
/// differs: a false alarm, never a silent loss. SipHash, with a key of this run's own.
pub struct KeyFingerprints {
    spec: KeySpec,
    seed: RandomState,
}

impl KeyFingerprints {
    pub fn new(spec: KeySpec) -> KeyFingerprints {
        KeyFingerprints {
            spec,
            seed: RandomState::new(),
        }
    }

    pub fn spec(&self) -> &KeySpec {
        &self.spec
    }

    /// The row's key as 64 bits; `None` for a row known by its human_id alone.
    pub fn of(&self, p: &PlannedRow) -> Option<u64> {
        let KeyBy::Fields(fields) = key_by(&self.spec, p) else {
            return None;
        };
        let mut hasher = self.seed.build_hasher();
        for field in fields {
            hasher.write(field_text(p, *field).as_bytes());
            hasher.write_u8(0);
        }
        Some(hasher.finish())
    }
}

/// A field's value in the request, as text: what two rows must share to be one run.
fn field_text(p: &PlannedRow, field: Field) -> String {
    let body = &p.body;
    let join = |list: &[String]| list.join("\n");
    match field {
        Field::Title => body.title.clone(),
        Field::Description => body.description.clone().unwrap_or_default(),
        Field::Status => body.status.to_owned(),
        Field::ProjectId => body.project_id.clone(),
        Field::HumanId => body.human_id.clone().unwrap_or_default(),
        Field::SelectionType => body.selection_type.to_owned(),
        Field::TestCaseIds => join(body.static_selection_filters.first().map_or(&[][..], |f| &f.values)),
        Field::StartDate => body.start_date.map(|d| d.to_string()).unwrap_or_default(),
        Field::EndDate => body.end_date.map(|d| d.to_string()).unwrap_or_default(),
        Field::AssigneeId => match (&body.assignee_id, &p.assignee_email) {
            (Some(id), _) => id.clone(),
            (None, Some(a)) => a.email.to_lowercase(),
            (None, None) => String::new(),
        },
        Field::LabelNames => join(&body.label_names),
        Field::EnvironmentIds => join(&body.environment_ids),
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

/// What a `created` line keeps of each field of the request: a short hash of its JSON,
/// `name:hash` separated by spaces, so a later run can name the fields that changed
/// without holding (or storing) the request itself.
pub fn field_hashes(body: &Map<String, Value>) -> String {
    body.iter()
        .map(|(name, value)| format!("{name}:{}", short_hash(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fields whose value differs from what `stored` ([`field_hashes`]) says was sent.
pub fn fields_changed_since(body: &Map<String, Value>, stored: &str) -> Vec<String> {
    let stored: Vec<(&str, &str)> = stored.split(' ').filter_map(|pair| pair.split_once(':')).collect();
    let mut changed: Vec<String> = body
        .iter()
        .filter(|(name, value)| {
            stored
                .iter()
                .find(|(n, _)| n == name)
                .is_none_or(|(_, h)| *h != short_hash(value))
        })
        .map(|(name, _)| name.clone())
        .collect();
    for (name, _) in &stored {
        if !body.contains_key(*name) {
            changed.push((*name).to_owned());
        }
    }
    changed
}

fn short_hash(value: &Value) -> String {
    let mut hex = hex::encode(Sha256::digest(value.to_string().as_bytes()));
    hex.truncate(8);
    hex
}

/// What a `created` line records of a row whose run was found at the service: each
/// field's hash as the service holds it, or as the row has it where the service's answer
/// leaves the field out (unknown is not different), and the row's own human_id (the
/// service assigns its own). [`fields_changed_since`] on it names what differs now and on
/// every later night alike.
pub fn field_hashes_as_found(ours: &Map<String, Value>, theirs: &Map<String, Value>) -> String {
    ours.iter()
        .map(|(name, value)| {
            let held = theirs.get(name).filter(|_| name != "human_id").unwrap_or(value);
            format!("{name}:{}", short_hash(held))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::TestRunBody;

    fn planned(title: &str, start: Option<i64>, human_id: Option<&str>) -> PlannedRow {
        PlannedRow {
            row: 2,
            body: TestRunBody {
                title: title.to_owned(),
                start_date: start,
                human_id: human_id.map(str::to_owned),
                project_id: "p1".to_owned(),
                ..TestRunBody::default()
            },
            ..PlannedRow::default()
        }
    }

    #[test]
    fn row_keys_are_stable() {
        // Computed independently (`printf 'Smoke\0001710000000\000' | sha256sum`); a change
        // here means every existing ledger would look its rows up again.
        let default = KeySpec::default_for(false);
        assert_eq!(
            row_key(&default, &planned("Smoke", Some(1_710_000_000), None)),
            "title+start_date:82a3edafc059b195d516c636f4cef60d"
        );
        let by_id = KeySpec::default_for(true);
        for (human_id, want) in [("DEMO-001", "human_id:DEMO-001"), ("  DEMO-001 ", "human_id:DEMO-001")] {
            assert_eq!(row_key(&by_id, &planned("x", None, Some(human_id))), want);
        }
        // A blank human id is no human id: the row is known by its title and start date.
        assert_eq!(
            row_key(&by_id, &planned("Smoke", Some(1_710_000_000), Some("  "))),
            row_key(&default, &planned("Smoke", Some(1_710_000_000), None))
        );
        assert_ne!(
            row_key(&default, &planned("Smoke", Some(1), None)),
            row_key(&default, &planned("Smoke", Some(2), None))
        );
    }

    #[test]
    fn key_specs_parse_names_and_aliases_and_refuse_the_rest() {
        assert_eq!(KeySpec::parse("title, start").unwrap(), KeySpec::default_for(false));
        assert_eq!(KeySpec::parse("human_id,human_id").unwrap(), KeySpec::default_for(true));
        assert_eq!(KeySpec::parse("Run Name").unwrap().describe(), "title");
        assert!(KeySpec::parse("").is_err());
        assert!(KeySpec::parse("colour").unwrap_err().contains("not a field"));
    }

    #[test]
    fn changed_fields_are_named_by_their_hashes() {
        let ours = planned("Smoke", Some(1), None).body.to_fields();
        let stored = field_hashes(&ours);
        assert!(fields_changed_since(&ours, &stored).is_empty());
        let edited = planned("Smoke 2", Some(1), None).body.to_fields();
        assert_eq!(fields_changed_since(&edited, &stored), ["title"]);
        let mut theirs = ours.clone();
        theirs.insert("title".to_owned(), Value::from("Other"));
        theirs.remove("label_names");
        // What the service leaves out is not a difference; what it holds otherwise is.
        assert_eq!(
            fields_changed_since(&ours, &field_hashes_as_found(&ours, &theirs)),
            ["title"]
        );
    }
}
