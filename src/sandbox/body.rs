//! Checks a create-test-run request body against the contract's shape, naming every bad
//! field and what would be accepted. Stricter than the real service on purpose: the
//! sandbox is where the importer's own requests get caught breaking the contract.

use serde_json::{Map, Value};

/// The fields of the create-test-run body, in the api page's order.
pub(super) const FIELDS: [&str; 12] = [
    "title",
    "description",
    "status",
    "project_id",
    "human_id",
    "selection_type",
    "static_selection_filters",
    "start_date",
    "end_date",
    "assignee_id",
    "label_names",
    "environment_ids",
];

#[derive(Debug, PartialEq, thiserror::Error)]
pub(super) enum BodyError {
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    /// Every problem found, each starting with the field's path.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// The body as a JSON object, when it has the contract's shape and its `project_id`
/// is the project in the path.
pub(super) fn check_body(path_project: &str, raw: &[u8]) -> Result<Map<String, Value>, BodyError> {
    let value: Value = serde_json::from_slice(raw).map_err(|e| BodyError::Malformed(e.to_string()))?;
    let Value::Object(body) = value else {
        return Err(BodyError::Invalid(vec![format!(
            "body: expected a JSON object, got {}",
            kind(&value)
        )]));
    };
    let mut check = Checker {
        body: &body,
        problems: Vec::new(),
    };
    for key in body.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        check.problems.push(format!(
            "{key}: unknown field; accepted fields are {}",
            FIELDS.join(", ")
        ));
    }
    check.text("title", true);
    check.text("description", false);
    check.text("human_id", false);
    check.one_of("status", &["ACTIVE", "CLOSED"]);
    let selection = check.one_of("selection_type", &["STATIC", "DYNAMIC"]);
    if let Some(project) = check.uuid("project_id", true)
        && project != path_project
    {
        check.problems.push(format!(
            "project_id: \"{project}\" differs from the project in the URL path \"{path_project}\""
        ));
    }
    check.uuid("assignee_id", false);
    check.filters(selection == Some("STATIC"));
    let start = check.timestamp("start_date");
    let end = check.timestamp("end_date");
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        check
            .problems
            .push(format!("end_date: {end} is before start_date {start}"));
    }
    check.list("label_names", body.get("label_names"), Item::Text);
    check.list("environment_ids", body.get("environment_ids"), Item::Uuid);
    if check.problems.is_empty() {
        Ok(body)
    } else {
        Err(BodyError::Invalid(check.problems))
    }
}

/// A well-formed UUID in its usual hyphenated form (36 characters).
pub(super) fn is_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Clone, Copy)]
enum Item {
    Text,
    Uuid,
}

struct Checker<'a> {
    body: &'a Map<String, Value>,
    problems: Vec<String>,
}

impl<'a> Checker<'a> {
    fn field(&mut self, name: &str, required: bool) -> Option<&'a Value> {
        let value = self.body.get(name);
        if value.is_none() && required {
            self.problems.push(format!("{name}: required"));
        }
        value
    }

    fn string(&mut self, path: &str, value: &'a Value) -> Option<&'a str> {
        match value {
            Value::String(s) => Some(s),
            other => {
                self.problems
                    .push(format!("{path}: expected a string, got {}", kind(other)));
                None
            }
        }
    }

    /// A non-blank string; the contract omits a field that has no value.
    fn text(&mut self, name: &str, required: bool) -> Option<&'a str> {
        let text = self.field(name, required)?;
        let text = self.string(name, text)?;
        if text.trim().is_empty() {
            let hint = if required { "" } else { " (omit the field instead)" };
            self.problems.push(format!("{name}: must not be empty{hint}"));
            return None;
        }
        Some(text)
    }

    fn one_of(&mut self, name: &str, allowed: &[&str]) -> Option<&'a str> {
        let value = self.field(name, true)?;
        let text = self.string(name, value)?;
        if !allowed.contains(&text) {
            self.problems
                .push(format!("{name}: \"{text}\" is not one of {}", allowed.join(", ")));
            return None;
        }
        Some(text)
    }

    fn uuid(&mut self, name: &str, required: bool) -> Option<&'a str> {
        let value = self.field(name, required)?;
        let text = self.string(name, value)?;
        if !is_uuid(text) {
            self.problems.push(format!("{name}: \"{text}\" is not a UUID"));
            return None;
        }
        Some(text)
    }

    fn timestamp(&mut self, name: &str) -> Option<i64> {
        let value = self.field(name, false)?;
        match value.as_i64() {
            Some(t) if t >= 0 => Some(t),
            _ => {
                self.problems.push(format!(
                    "{name}: expected a Unix timestamp as a non-negative integer, got {value}"
                ));
                None
            }
        }
    }

    /// A required array of distinct, non-blank strings (or UUIDs) found at `path`.
    fn list(&mut self, path: &str, value: Option<&'a Value>, item: Item) {
        let Some(value) = value else {
            self.problems.push(format!("{path}: required (an array, maybe empty)"));
            return;
        };
        let Value::Array(items) = value else {
            self.problems
                .push(format!("{path}: expected an array, got {}", kind(value)));
            return;
        };
        let mut seen: Vec<&str> = Vec::with_capacity(items.len());
        for (i, entry) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let Some(text) = self.string(&at, entry) else {
                continue;
            };
            if text.trim().is_empty() {
                self.problems
                    .push(format!("{at}: must not be empty (drop empty entries)"));
            } else if matches!(item, Item::Uuid) && !is_uuid(text) {
                self.problems.push(format!("{at}: \"{text}\" is not a UUID"));
            } else if let Some(first) = seen.iter().position(|s| *s == text) {
                self.problems
                    .push(format!("{at}: \"{text}\" repeats {path}[{first}] (drop duplicates)"));
            }
            seen.push(text);
        }
    }

    /// `[{"field":"id","operator":"IN","values":[<uuid>...]}]`, required for STATIC runs.
    fn filters(&mut self, required: bool) {
        const NAME: &str = "static_selection_filters";
        let Some(value) = self.field(NAME, required) else {
            return;
        };
        let Value::Array(filters) = value else {
            self.problems
                .push(format!("{NAME}: expected an array, got {}", kind(value)));
            return;
        };
        for (i, filter) in filters.iter().enumerate() {
            let at = format!("{NAME}[{i}]");
            let Value::Object(map) = filter else {
                self.problems.push(format!(
                    "{at}: expected an object {{\"field\":\"id\",\"operator\":\"IN\",\"values\":[...]}}, got {}",
                    kind(filter)
                ));
                continue;
            };
            for key in map.keys() {
                if !["field", "operator", "values"].contains(&key.as_str()) {
                    self.problems.push(format!(
                        "{at}.{key}: unknown field; accepted fields are field, operator, values"
                    ));
                }
            }
            for (key, want) in [("field", "id"), ("operator", "IN")] {
                match map.get(key) {
                    Some(Value::String(s)) if s == want => {}
                    Some(other) => self
                        .problems
                        .push(format!("{at}.{key}: expected \"{want}\", got {other}")),
                    None => self.problems.push(format!("{at}.{key}: required (\"{want}\")")),
                }
            }
            if matches!(map.get("values"), Some(Value::Array(v)) if v.is_empty()) {
                self.problems.push(format!(
                    "{at}.values: must not be empty (send {NAME}: [] for a run without test cases)"
                ));
            } else {
                self.list(&format!("{at}.values"), map.get("values"), Item::Uuid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PROJECT: &str = "c47ade67-0543-4582-a4a5-b7de447c94f5";
    const CASE: &str = "9ac271b6-4e89-4c93-8c75-2d625efa0b2d";

    fn good() -> Value {
        json!({
            "title": "Regression suite — patient portal",
            "description": "Executing regression test cases",
            "status": "ACTIVE",
            "project_id": PROJECT,
            "human_id": "DEMO-001",
            "selection_type": "STATIC",
            "static_selection_filters": [
                {"field": "id", "operator": "IN", "values": [CASE]}
            ],
            "start_date": 1710675200,
            "end_date": 1710761600,
            "assignee_id": "cbbc40a5-26e9-4b88-8c27-3626c9fbdaa4",
            "label_names": ["Smoke", "Regression"],
            "environment_ids": []
        })
    }

    /// The example body with `field` set to `value`, or removed when `value` is `None`.
    fn with(field: &str, value: Option<Value>) -> Vec<u8> {
        let mut body = good();
        if let Value::Object(map) = &mut body {
            match value {
                Some(value) => map.insert(field.to_owned(), value),
                None => map.remove(field),
            };
        }
        serde_json::to_vec(&body).expect("serialise test body")
    }

    #[test]
    fn accepts_the_api_pages_example_and_minimal_bodies() {
        let minimal = json!({
            "title": "t", "status": "CLOSED", "project_id": PROJECT,
            "selection_type": "STATIC", "static_selection_filters": [],
            "label_names": [], "environment_ids": []
        });
        let dynamic = json!({
            "title": "t", "status": "ACTIVE", "project_id": PROJECT,
            "selection_type": "DYNAMIC", "label_names": [], "environment_ids": []
        });
        for body in [good(), minimal, dynamic] {
            let raw = serde_json::to_vec(&body).expect("serialise");
            assert!(check_body(PROJECT, &raw).is_ok(), "{body}");
        }
    }

    #[test]
    fn names_the_field_and_the_reason() {
        let other_project = "9ac271b6-4e89-4c93-8c75-2d625efa0b2d";
        let filter = |f: Value| Some(json!([f]));
        let cases: Vec<(&str, Option<Value>, &str)> = vec![
            ("title", None, "title: required"),
            ("title", Some(json!("  ")), "title: must not be empty"),
            ("title", Some(json!(3)), "title: expected a string, got a number"),
            ("description", Some(json!("")), "description: must not be empty (omit"),
            (
                "description",
                Some(Value::Null),
                "description: expected a string, got null",
            ),
            (
                "status",
                Some(json!("active")),
                "status: \"active\" is not one of ACTIVE, CLOSED",
            ),
            ("status", None, "status: required"),
            (
                "selection_type",
                Some(json!("ALL")),
                "selection_type: \"ALL\" is not one of",
            ),
            ("project_id", None, "project_id: required"),
            ("project_id", Some(json!("abc")), "project_id: \"abc\" is not a UUID"),
            (
                "project_id",
                Some(json!(other_project)),
                "project_id: \"9ac271b6-4e89-4c93-8c75-2d625efa0b2d\" differs",
            ),
            (
                "assignee_id",
                Some(json!("ada@example.com")),
                "assignee_id: \"ada@example.com\" is not a UUID",
            ),
            (
                "start_date",
                Some(json!("2024-03-17")),
                "start_date: expected a Unix timestamp",
            ),
            ("start_date", Some(json!(1.5)), "start_date: expected a Unix timestamp"),
            ("start_date", Some(json!(-1)), "start_date: expected a Unix timestamp"),
            (
                "end_date",
                Some(json!(5)),
                "end_date: 5 is before start_date 1710675200",
            ),
            ("label_names", None, "label_names: required"),
            (
                "label_names",
                Some(json!("Smoke")),
                "label_names: expected an array, got a string",
            ),
            (
                "label_names",
                Some(json!(["a", ""])),
                "label_names[1]: must not be empty",
            ),
            (
                "label_names",
                Some(json!(["a", 1])),
                "label_names[1]: expected a string, got a number",
            ),
            (
                "label_names",
                Some(json!(["a", "b", "a"])),
                "label_names[2]: \"a\" repeats label_names[0]",
            ),
            ("environment_ids", None, "environment_ids: required"),
            (
                "environment_ids",
                Some(json!(["prod"])),
                "environment_ids[0]: \"prod\" is not a UUID",
            ),
            ("static_selection_filters", None, "static_selection_filters: required"),
            (
                "static_selection_filters",
                Some(json!({})),
                "static_selection_filters: expected an array, got an object",
            ),
            (
                "static_selection_filters",
                Some(json!([CASE])),
                "static_selection_filters[0]: expected an object",
            ),
            (
                "static_selection_filters",
                filter(json!({"field": "key", "operator": "IN", "values": [CASE]})),
                "static_selection_filters[0].field: expected \"id\", got \"key\"",
            ),
            (
                "static_selection_filters",
                filter(json!({"field": "id", "values": [CASE]})),
                "static_selection_filters[0].operator: required",
            ),
            (
                "static_selection_filters",
                filter(json!({"field": "id", "operator": "IN", "values": []})),
                "static_selection_filters[0].values: must not be empty",
            ),
            (
                "static_selection_filters",
                filter(json!({"field": "id", "operator": "IN"})),
                "static_selection_filters[0].values: required",
            ),
            (
                "static_selection_filters",
                filter(json!({"field": "id", "operator": "IN", "values": ["TC-1"]})),
                "static_selection_filters[0].values[0]: \"TC-1\" is not a UUID",
            ),
            (
                "static_selection_filters",
                filter(json!({"field": "id", "operator": "IN", "values": [CASE], "x": 1})),
                "static_selection_filters[0].x: unknown field",
            ),
            (
                "test_case_ids",
                Some(json!([CASE])),
                "test_case_ids: unknown field; accepted fields are title,",
            ),
        ];
        for (field, value, want) in cases {
            match check_body(PROJECT, &with(field, value)) {
                Err(BodyError::Invalid(problems)) => assert!(
                    problems.iter().any(|p| p.starts_with(want)),
                    "want {want:?}, got {problems:?}"
                ),
                other => panic!("want {want:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let raw = br#"{"title":"","status":"DONE","project_id":"x"}"#;
        let Err(BodyError::Invalid(problems)) = check_body(PROJECT, raw) else {
            panic!("expected invalid");
        };
        assert!(problems.len() >= 5, "{problems:?}");
    }

    #[test]
    fn tells_malformed_json_from_a_wrong_shape() {
        assert!(matches!(
            check_body(PROJECT, b"{\"title\": "),
            Err(BodyError::Malformed(_))
        ));
        assert_eq!(
            check_body(PROJECT, b"[1]"),
            Err(BodyError::Invalid(vec![
                "body: expected a JSON object, got an array".into()
            ]))
        );
    }
}
