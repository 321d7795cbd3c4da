//! The test runs a project already holds, as the service lists them: found for the rows of
//! a file by title, start and end date, page by page, in as few requests as it takes.
//!
//! Two ways to look: list the project's runs (100 a page), or ask for each distinct title
//! (`title__CONTAINS`). Which is cheaper depends on how many runs the project holds, which
//! no answer says up front. So the project's list is read while it has taken fewer pages
//! than there are titles still to find; if it has not ended by then, the titles still
//! unfound are asked for one by one. The lookup then costs at most about twice the smaller
//! of the two, and exactly the list's pages whenever those are fewer than the titles.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{ApiClient, ApiError};

/// Runs asked for in one page: the most the service gives.
pub const PAGE_SIZE: usize = 100;

/// A test run as the service lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRun {
    pub id: String,
    pub human_id: Option<String>,
    /// Every field the service gave, for comparing with a row's request.
    pub fields: Map<String, Value>,
}

impl RemoteRun {
    fn from_value(value: Value) -> Option<RemoteRun> {
        let Value::Object(fields) = value else { return None };
        let id = text_of(fields.get("id")?)?;
        let human_id = fields.get("human_id").and_then(text_of);
        Some(RemoteRun { id, human_id, fields })
    }

    fn title(&self) -> Option<&str> {
        self.fields.get("title").and_then(Value::as_str)
    }

    fn date(&self, name: &str) -> Option<i64> {
        self.fields.get(name).and_then(Value::as_i64)
    }

    /// Whether this is the run of a row with this title, start and end date: the rule
    /// by which a row is known at the service (its human id is the service's own).
    pub fn is_run_of(&self, wanted: &Wanted) -> bool {
        self.title() == Some(wanted.title.as_str())
            && self.date("start_date") == wanted.start_date
            && self.date("end_date") == wanted.end_date
    }
}

/// An id as text, whether the service writes it as a string or a number.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A row to find: what its run would hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub title: String,
    pub start_date: Option<i64>,
    pub end_date: Option<i64>,
}

/// The envelope every paged list answers in: `{"data": [...], "next_cursor": "…" | null}`, or
/// `data` as an object holding the list under `key` (`test_runs`, `test_cases`). Returns the
/// list's items and the cursor of the next page; anything else is no answer to conclude from.
pub(super) fn list_page(value: Value, key: &str, noun: &str) -> Result<(Vec<Value>, Option<String>), String> {
    let Value::Object(mut top) = value else {
        return Err("the answer is not a JSON object".to_owned());
    };
    let data = match top.remove("data") {
        Some(Value::Array(items)) => items,
        Some(Value::Object(mut data)) => match data.remove(key) {
            Some(Value::Array(items)) => items,
            _ => return Err(format!("its `data` holds no `{key}` list")),
        },
        _ => return Err(format!("it has no `data` list of {noun}")),
    };
    let next_cursor = match top.remove("next_cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => return Err(format!("its `next_cursor` is not text: {other}")),
    };
    Ok((data, next_cursor))
}

/// One page of a list, and where the next begins.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    pub runs: Vec<RemoteRun>,
    pub next_cursor: Option<String>,
}

/// The runs already given to a row, by a fingerprint of their ids: kept across the parts a
/// long file is looked up in, at a few bytes a run.
#[derive(Debug, Default)]
pub struct Claimed(HashSet<u64>);

impl Claimed {
    /// Takes the run for a row; false if a row has it already.
    fn take(&mut self, id: &str) -> bool {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(id);
        self.0.insert(hash)
    }
}

impl ApiClient {
    /// `GET /projects/{pid}/test_runs`: one page, of every run or of those whose title
    /// contains `title`.
    pub async fn runs_page(
        &self,
        project_id: &str,
        title: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<RunPage, ApiError> {
        let mut path = format!("/projects/{project_id}/test_runs?page_size={PAGE_SIZE}");
        for (name, value) in [("title__CONTAINS", title), ("cursor", cursor)] {
            if let Some(value) = value {
                path.push_str(&format!(
                    "&{name}={}",
                    url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
                ));
            }
        }
        let what = "GET /projects/{id}/test_runs";
        let value = self.get_json(&path, what).await?;
        parse_page(value).map_err(|message| ApiError::Unreadable {
            what: what.to_owned(),
            message,
        })
    }

    /// Finds the runs of `wanted` rows in one project, handing each to `found` with the
    /// row's place in `wanted` as it comes (nothing found is held). Each run answers for
    /// one row at most, taken in the order the service lists them (oldest first);
    /// `claimed` holds the runs earlier rows have (of earlier calls: a long file is looked
    /// up in parts), and gains those found now. Returns the requests it took.
    pub async fn find_runs(
        &self,
        project_id: &str,
        wanted: &[Wanted],
        claimed: &mut Claimed,
        found: &mut dyn FnMut(usize, RemoteRun),
    ) -> Result<usize, ApiError> {
        let mut search = Search::new(wanted, claimed, found);
        self.search(project_id, &mut search).await?;
        Ok(search.requests)
    }

    async fn search(&self, project_id: &str, search: &mut Search<'_>) -> Result<(), ApiError> {
        if search.titles_unfound() > 1 {
            self.read_the_list(project_id, search).await?;
        }
        for title in search.unfound_titles() {
            let mut cursor: Option<String> = None;
            loop {
                let page = self.runs_page(project_id, Some(&title), cursor.as_deref()).await?;
                search.requests += 1;
                search.claim(page.runs);
                cursor = page.next_cursor;
                if cursor.is_none() || !search.title_unfound(&title) {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Reads the project's list while it has taken fewer pages than there are titles still
    /// to find. Marks the search done if the list ended.
    async fn read_the_list(&self, project_id: &str, search: &mut Search<'_>) -> Result<(), ApiError> {
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        while pages < search.titles_unfound() {
            let page = self.runs_page(project_id, None, cursor.as_deref()).await?;
            pages += 1;
            search.requests += 1;
            search.claim(page.runs);
            cursor = page.next_cursor;
            if cursor.is_none() {
                search.listed_whole = true;
                return Ok(());
            }
        }
        Ok(())
    }
}

/// The rows still to find, by title.
struct Search<'w> {
    wanted: &'w [Wanted],
    /// Rows not found yet, by title, in row order.
    unfound: HashMap<&'w str, Vec<usize>>,
    /// Runs already taken by a row.
    claimed: &'w mut Claimed,
    /// Where each run found goes, with its row.
    found: &'w mut dyn FnMut(usize, RemoteRun),
    requests: usize,
    /// The project's whole list was read: what is not found does not exist.
    listed_whole: bool,
}

impl<'w> Search<'w> {
    fn new(wanted: &'w [Wanted], claimed: &'w mut Claimed, found: &'w mut dyn FnMut(usize, RemoteRun)) -> Search<'w> {
        let mut unfound: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, w) in wanted.iter().enumerate() {
            unfound.entry(w.title.as_str()).or_default().push(i);
        }
        Search {
            wanted,
            unfound,
            claimed,
            found,
            requests: 0,
            listed_whole: false,
        }
    }

    fn titles_unfound(&self) -> usize {
        if self.listed_whole { 0 } else { self.unfound.len() }
    }

    fn title_unfound(&self, title: &str) -> bool {
        self.unfound.contains_key(title)
    }

    /// The titles still to find, in the order their first rows come.
    fn unfound_titles(&self) -> Vec<String> {
        if self.listed_whole {
            return Vec::new();
        }
        let mut titles: Vec<(usize, &str)> = self.unfound.iter().map(|(t, rows)| (rows[0], *t)).collect();
        titles.sort_unstable();
        titles.into_iter().map(|(_, t)| t.to_owned()).collect()
    }

    /// Gives each run to the first unfound row it is the run of.
    fn claim(&mut self, runs: Vec<RemoteRun>) {
        for run in runs {
            let Some(title) = run.title() else { continue };
            let Some(rows) = self.unfound.get_mut(title) else {
                continue;
            };
            let Some(at) = rows.iter().position(|&i| run.is_run_of(&self.wanted[i])) else {
                continue;
            };
            if !self.claimed.take(&run.id) {
                continue;
            }
            let row = rows.remove(at);
            if rows.is_empty() {
                self.unfound.remove(title);
            }
            (self.found)(row, run);
        }
    }
}

/// A list answer: `{"data": [<run>...], "next_cursor": "…" | null}`, or `data` as an object
/// holding a `test_runs` array. Anything else is no answer to conclude from.
pub(crate) fn parse_page(value: Value) -> Result<RunPage, String> {
    let (data, next_cursor) = list_page(value, "test_runs", "test runs")?;
    let mut runs = Vec::with_capacity(data.len());
    for value in data {
        runs.push(RemoteRun::from_value(value).ok_or("a test run in it has no id")?);
    }
    Ok(RunPage { runs, next_cursor })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wanted(title: &str, start: Option<i64>) -> Wanted {
        Wanted {
            title: title.to_owned(),
            start_date: start,
            end_date: None,
        }
    }

    fn run(id: &str, title: &str, start: Option<i64>) -> RemoteRun {
        let value = json!({"id": id, "human_id": format!("P-R-{id}"), "title": title, "start_date": start});
        RemoteRun::from_value(value).expect("a run")
    }

    #[test]
    fn list_answers_in_either_shape_are_read_and_others_refused() {
        let flat = json!({"message": "", "data": [{"id": "a", "title": "x"}], "next_cursor": "c2"});
        let page = parse_page(flat).expect("flat");
        assert_eq!((page.runs.len(), page.next_cursor.as_deref()), (1, Some("c2")));
        let nested = json!({"data": {"test_runs": [{"id": 7, "title": "x"}]}});
        let page = parse_page(nested).expect("nested");
        assert_eq!((page.runs[0].id.as_str(), page.next_cursor), ("7", None));
        for bad in [
            json!([]),
            json!({"data": {"runs": []}}),
            json!({"message": "ok"}),
            json!({"data": [{"title": "no id"}]}),
            json!({"data": [], "next_cursor": 3}),
        ] {
            assert!(parse_page(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_run_is_a_rows_by_title_start_and_end() {
        let r = run("a", "Smoke", Some(10));
        assert!(r.is_run_of(&wanted("Smoke", Some(10))));
        assert!(!r.is_run_of(&wanted("Smoke", Some(11))));
        assert!(!r.is_run_of(&wanted("smoke", Some(10))));
        assert!(!r.is_run_of(&wanted("Smoke", None)));
    }

    #[test]
    fn each_run_answers_for_one_row_in_list_order() {
        let rows = [wanted("A", Some(1)), wanted("A", Some(1)), wanted("B", None)];
        // Run 0 was given to a row of an earlier part.
        let mut claimed = Claimed::default();
        assert!(claimed.take("0"));
        let mut found: Vec<(usize, String)> = Vec::new();
        let mut keep = |row: usize, run: RemoteRun| found.push((row, run.id));
        let mut search = Search::new(&rows, &mut claimed, &mut keep);
        search.claim(vec![run("0", "A", Some(1))]);
        search.claim(vec![run("1", "A", Some(1)), run("2", "B", None), run("3", "C", None)]);
        assert_eq!(search.unfound_titles(), ["A"]);
        search.claim(vec![run("1", "A", Some(1)), run("4", "A", Some(1))]);
        let ids: Vec<(usize, &str)> = found.iter().map(|(row, id)| (*row, id.as_str())).collect();
        assert_eq!(ids, [(0, "1"), (2, "2"), (1, "4")]);
        assert!(!claimed.take("4"), "a run found is claimed for the parts after");
    }
}
