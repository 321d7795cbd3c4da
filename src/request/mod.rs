//! The create-test-run request: the body's types, field for field as the vendor's page
//! names them, and (in [`plan`]) the one writer of a request as JSON.

use serde::Serialize;

pub mod plan;

/// The request body, field for field as the vendor's page names and orders them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TestRunBody {
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `ACTIVE` or `CLOSED`.
    pub status: &'static str,
    pub project_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_id: Option<String>,
    /// Always `STATIC`: a sheet cannot carry dynamic filters.
    pub selection_type: &'static str,
    pub static_selection_filters: Vec<SelectionFilter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<String>,
    pub label_names: Vec<String>,
    pub environment_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SelectionFilter {
    pub field: &'static str,
    pub operator: &'static str,
    pub values: Vec<String>,
}

/// A valid row, ready to send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlannedRow {
    pub row: usize,
    pub body: TestRunBody,
    /// An assignee given as an e-mail address: resolved to a user id before sending.
    pub assignee_email: Option<EmailAssignee>,
}

impl PlannedRow {
    /// The request path below the API root.
    pub fn path(&self) -> String {
        format!("/projects/{}/test_runs", self.body.project_id)
    }
}

/// An assignee given as an e-mail address, and where it stands, for the problem
/// reported if no user has it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailAssignee {
    pub email: String,
    pub column: Option<String>,
    pub cell: Option<String>,
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
