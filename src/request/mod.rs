//! The create-test-run request: the body's types, field for field as the vendor's page
//! names them, and (in [`plan`]) the one writer of a request as JSON.

use serde::{Deserialize, Deserializer, Serialize};

pub mod plan;

/// A fixed word of the body (`ACTIVE`, `STATIC`, `IN`): one of the validator's constants.
pub type Word = &'static str;

/// The request body, field for field as the vendor's page names and orders them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestRunBody {
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    /// `ACTIVE` or `CLOSED`.
    #[serde(deserialize_with = "known_word")]
    pub status: Word,
    pub project_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub human_id: Option<String>,
    /// Always `STATIC`: a sheet cannot carry dynamic filters.
    #[serde(deserialize_with = "known_word")]
    pub selection_type: Word,
    pub static_selection_filters: Vec<SelectionFilter>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub end_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub assignee_id: Option<String>,
    pub label_names: Vec<String>,
    pub environment_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectionFilter {
    #[serde(deserialize_with = "known_word")]
    pub field: Word,
    #[serde(deserialize_with = "known_word")]
    pub operator: Word,
    pub values: Vec<String>,
}

/// A valid row, ready to send. Serde reads it back from the temporary file an import
/// keeps its rows in while it runs, never from users' files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlannedRow {
    pub row: usize,
    pub body: TestRunBody,
    /// An assignee given as an e-mail address or a full name: resolved to a user id
    /// before sending.
    pub assignee_email: Option<EmailAssignee>,
    /// Test cases given by the service's human ids (`TC-12`): they stand in the body's
    /// filter as written until they are resolved to ids before sending.
    pub test_case_refs: Option<TestCaseRefs>,
}

impl PlannedRow {
    /// The request path below the API root.
    pub fn path(&self) -> String {
        format!("/projects/{}/test_runs", self.body.project_id)
    }

    /// Whether something in the body is still to be looked up at the service (an e-mail
    /// or name assignee, a test case human id): the request is not yet the one to send.
    pub fn unresolved(&self) -> bool {
        (self.assignee_email.is_some() && self.body.assignee_id.is_none()) || self.test_case_refs.is_some()
    }

    /// The human ids in the test case filter → ids, duplicates then dropped keeping the
    /// first (a case given by its id and its human id is one case).
    pub fn resolve_test_cases(&mut self, id_of: impl Fn(&str) -> Option<String>) {
        let Some(filter) = self.body.static_selection_filters.first_mut() else {
            return;
        };
        let mut values: Vec<String> = Vec::with_capacity(filter.values.len());
        for value in filter.values.drain(..) {
            let value = id_of(&value).unwrap_or(value);
            if !values.contains(&value) {
                values.push(value);
            }
        }
        filter.values = values;
        self.test_case_refs = None;
    }
}

/// Test cases given by human id, and where they stand, for the problem reported if the
/// project has no such case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCaseRefs {
    /// Upper-cased, in the order the cell lists them.
    pub human_ids: Vec<String>,
    pub column: Option<String>,
    pub cell: Option<String>,
}

/// An assignee given as an e-mail address (or a full name, when it holds no `@`), and where it stands, for the problem
/// reported if no user has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailAssignee {
    pub email: String,
    pub column: Option<String>,
    pub cell: Option<String>,
}

/// The fixed words of a body (`ACTIVE`, `STATIC`, `IN`, ...), read back as the constants
/// the validator put there.
fn known_word<'de, D: Deserializer<'de>>(deserializer: D) -> Result<&'static str, D::Error> {
    const WORDS: [&str; 7] = ["ACTIVE", "CLOSED", "STATIC", "DYNAMIC", "id", "IN", ""];
    let word = String::deserialize(deserializer)?;
    WORDS
        .into_iter()
        .find(|known| *known == word)
        .ok_or_else(|| serde::de::Error::custom(format!("not a word of a request body: {word:?}")))
}

impl TestRunBody {
    /// The body's fields as JSON values, by name: what a run is compared on.
    pub fn to_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        }
    }
}
