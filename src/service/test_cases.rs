//! Test cases given by the service's human ids (`TC-12`), resolved to their ids in as few
//! requests as it takes, and the nearest known ids for one a project does not have.
//!
//! Two ways to look, as for runs (see [`super::runs`]): read the project's list (100 cases
//! a page), or ask for each human id (`GET /projects/{pid}/test_cases/{human id}`). No
//! answer says up front how long the list is, so the list is read while it has taken fewer
//! pages than there are ids still to find; if it has not ended by then, the ids still
//! unfound are asked for one by one. A project of up to 100 cases costs one request
//! whatever the ids; a large one costs at most about twice the number of ids.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::runs::{PAGE_SIZE, list_page};
use super::{ApiClient, ApiError};

/// What a lookup found in one project.
#[derive(Debug, Default)]
pub struct CaseLookup {
    /// Human id (upper-cased) → the case's id.
    pub found: HashMap<String, String>,
    /// Every human id seen on the way, for suggesting the nearest to an unknown one.
    pub known: BTreeSet<String>,
    pub requests: usize,
}

impl CaseLookup {
    /// The id of the case with this human id, if the project has it.
    pub fn id_of(&self, human_id: &str) -> Option<&str> {
        self.found.get(&human_id.to_ascii_uppercase()).map(String::as_str)
    }

    /// Why the project has no case `human_id`, naming the nearest known ones.
    pub fn unknown(&self, human_id: &str) -> String {
        let nearest = nearest(human_id, &self.known);
        if nearest.is_empty() {
            format!("the project has no test case {human_id}; give its UUID or the human id the web app shows")
        } else {
            format!(
                "the project has no test case {human_id}; nearest known: {}",
                nearest.join(", ")
            )
        }
    }
}

/// Up to three known human ids nearest to `wanted` by edit distance (within 2 edits),
/// nearest first, then in the service's order of numbers.
pub fn nearest(wanted: &str, known: &BTreeSet<String>) -> Vec<String> {
    let wanted = wanted.to_ascii_uppercase();
    let mut close: Vec<(usize, u64, &str)> = known
        .iter()
        .map(|k| (strsim::levenshtein(&wanted, k), number_of(k), k.as_str()))
        .filter(|(d, _, _)| *d <= 2)
        .collect();
    close.sort();
    close.into_iter().take(3).map(|(_, _, k)| k.to_owned()).collect()
}

fn number_of(human_id: &str) -> u64 {
    human_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

impl ApiClient {
    /// Resolves the distinct `human_ids` (upper-cased) of one project.
    pub async fn find_test_cases(&self, project_id: &str, human_ids: &[String]) -> Result<CaseLookup, ApiError> {
        let mut lookup = CaseLookup::default();
        let mut unfound: BTreeSet<String> = human_ids.iter().map(|h| h.to_ascii_uppercase()).collect();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        // One page is worth reading even for one id: a small project answers all at once,
        // and its list gives the suggestions for an unknown id.
        while !unfound.is_empty() && pages < unfound.len().max(1) {
            let page = self.test_cases_page(project_id, cursor.as_deref()).await?;
            pages += 1;
            lookup.requests += 1;
            for (id, human_id) in page.cases {
                if unfound.remove(&human_id) {
                    lookup.found.insert(human_id.clone(), id);
                }
                lookup.known.insert(human_id);
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok(lookup);
            }
        }
        for human_id in unfound {
            lookup.requests += 1;
            if let Some(id) = self.test_case(project_id, &human_id).await? {
                lookup.known.insert(human_id.clone());
                lookup.found.insert(human_id, id);
            }
        }
        Ok(lookup)
    }

    /// `GET /projects/{pid}/test_cases?page_size=100&cursor=C`: one page of (id, human id).
    async fn test_cases_page(&self, project_id: &str, cursor: Option<&str>) -> Result<CasePage, ApiError> {
        let mut path = format!("/projects/{project_id}/test_cases?page_size={PAGE_SIZE}");
        if let Some(cursor) = cursor {
            let cursor: String = url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
            path.push_str(&format!("&cursor={cursor}"));
        }
        let what = "GET /projects/{id}/test_cases";
        let value = self.get_json(&path, what).await?;
        parse_case_page(value).map_err(|message| ApiError::Unreadable {
            what: what.to_owned(),
            message,
        })
    }

    /// `GET /projects/{pid}/test_cases/{human id}`: the case's id, or `None` on a 404.
    async fn test_case(&self, project_id: &str, human_id: &str) -> Result<Option<String>, ApiError> {
        let segment: String = url::form_urlencoded::byte_serialize(human_id.as_bytes()).collect();
        let what = "GET /projects/{id}/test_cases/{id}";
        match self
            .get_json(&format!("/projects/{project_id}/test_cases/{segment}"), what)
            .await
        {
            Ok(value) => parse_case(value).map(Some).map_err(|message| ApiError::Unreadable {
                what: what.to_owned(),
                message,
            }),
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One page of a project's test cases: (id, upper-cased human id) in the service's order.
#[derive(Debug, PartialEq)]
struct CasePage {
    cases: Vec<(String, String)>,
    next_cursor: Option<String>,
}

/// `{"data": [<case>...], "next_cursor": …}`, or `data` as an object holding `test_cases`.
fn parse_case_page(value: Value) -> Result<CasePage, String> {
    let (data, next_cursor) = list_page(value, "test_cases", "test cases")?;
    let cases = data.iter().map(case_ids).collect::<Option<Vec<_>>>();
    let cases = cases.ok_or("a test case in it has no id or human_id")?;
    Ok(CasePage { cases, next_cursor })
}

/// `{"data": {"test_case": {"id", …}}}` → the id.
fn parse_case(value: Value) -> Result<String, String> {
    value
        .pointer("/data/test_case")
        .and_then(case_ids)
        .map(|(id, _)| id)
        .ok_or_else(|| "it has no `data.test_case` with an id".to_owned())
}

fn case_ids(case: &Value) -> Option<(String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let id = text(case.get("id")?)?;
    let human_id = case.get("human_id").and_then(text).unwrap_or_default();
    Some((id, human_id.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pages_and_cases_are_read_in_either_shape_and_others_refused() {
        let page = parse_case_page(json!({"data": [{"id": "a", "human_id": "tc-1"}], "next_cursor": "c"})).unwrap();
        assert_eq!(page.cases, [("a".to_owned(), "TC-1".to_owned())]);
        assert_eq!(page.next_cursor.as_deref(), Some("c"));
        let page = parse_case_page(json!({"data": {"test_cases": [{"id": 7, "human_id": "TC-2"}]}})).unwrap();
        assert_eq!((page.cases[0].0.as_str(), page.next_cursor), ("7", None));
        for bad in [json!([]), json!({"data": {}}), json!({"data": [{"human_id": "TC-1"}]})] {
            assert!(parse_case_page(bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(parse_case(json!({"data": {"test_case": {"id": "x"}}})).unwrap(), "x");
        assert!(parse_case(json!({"data": {}})).is_err());
    }

    #[test]
    fn the_nearest_known_ids_are_suggested() {
        let known: BTreeSet<String> = (1..=30).map(|n| format!("TC-{n}")).collect();
        assert_eq!(nearest("TC-999", &known), ["TC-9", "TC-19", "TC-29"]);
        assert_eq!(nearest("tc-31", &known), ["TC-1", "TC-3", "TC-11"]);
        assert!(nearest("QA-123456", &known).is_empty());
    }
}
