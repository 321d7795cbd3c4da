//! The read-only endpoints of a project's test runs and test cases: paged lists and
//! single items by id or human id.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::page::{Cursor, Listing, page_of, page_size};
use super::routes::{json_answer, missing, refuse, stored_view};
use super::state::AppState;

type QueryResult = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The page a list request asks for.
struct PageRequest {
    /// Position in the list's underlying sequence where this page starts.
    start: usize,
    size: usize,
    query: HashMap<String, String>,
}

/// Reads `page_size` and `cursor`; the reason for a 400 when either is bad.
fn page_request(
    state: &AppState,
    listing: Listing,
    project_id: &str,
    query: QueryResult,
) -> Result<PageRequest, String> {
    let Query(query) = query.map_err(|e| format!("the query string could not be read: {e}"))?;
    let size = page_size(query.get("page_size").map(String::as_str))?;
    let start = match query.get("cursor") {
        None => 0,
        Some(text) => state
            .resolve_cursor(listing, project_id, text)
            .ok_or_else(|| format!("cursor: \"{text}\" is not a cursor this list handed out"))?,
    };
    Ok(PageRequest { start, size, query })
}

/// A list endpoint's answer: 404 for an unknown project, 400 for a bad page size or
/// cursor, else the page `items` cuts (the items and where the next page starts) with
/// `data` a bare array and `next_cursor` the next page's cursor or `null`.
fn list_page(
    state: &AppState,
    listing: Listing,
    project_id: &str,
    query: QueryResult,
    items: impl FnOnce(&PageRequest) -> (Vec<Value>, Option<usize>),
) -> Response {
    if !state.project_exists(project_id) {
        return missing(state);
    }
    let page = match page_request(state, listing, project_id, query) {
        Ok(page) => page,
        Err(details) => return refuse(state, StatusCode::BAD_REQUEST, "Bad Request", &details),
    };
    let (data, next) = items(&page);
    let next_cursor = next.map(|next| {
        state.issue_cursor(Cursor {
            listing,
            project_id: project_id.to_owned(),
            next,
        })
    });
    json_answer(
        StatusCode::OK,
        json!({"message": "", "data": data, "next_cursor": next_cursor}),
    )
}

/// `GET .../test_runs?page_size=N&cursor=C&title__CONTAINS=T`: runs in creation order;
/// the title filter ignores case.
pub(super) async fn list_runs(
    State(state): State<Arc<AppState>>,
    Path(project_id): Path<String>,
    query: QueryResult,
) -> Response {
    list_page(&state, Listing::TestRuns, &project_id, query, |page| {
        let title_part = page.query.get("title__CONTAINS").map_or("", String::as_str);
        let (runs, next) = state.page_runs(&project_id, title_part, page.start, page.size);
        (runs.iter().map(stored_view).collect(), next)
    })
}

/// `GET .../test_runs/{id or human id}`.
pub(super) async fn get_run(
    State(state): State<Arc<AppState>>,
    Path((project_id, wanted)): Path<(String, String)>,
) -> Response {
    let found = state
        .project_exists(&project_id)
        .then(|| state.find_run(&project_id, &wanted))
        .flatten();
    match found {
        Some(run) => json_answer(
            StatusCode::OK,
            json!({"message": "", "data": {"test_run": stored_view(&run)}}),
        ),
        None => missing(&state),
    }
}

/// `GET .../test_cases?page_size=N&cursor=C`: the project's test cases in their order.
pub(super) async fn list_test_cases(
    State(state): State<Arc<AppState>>,
    Path(project_id): Path<String>,
    query: QueryResult,
) -> Response {
    list_page(&state, Listing::TestCases, &project_id, query, |page| {
        let cases = state.test_cases(&project_id).into_iter().enumerate().skip(page.start);
        let (cases, next) = page_of(cases, page.size);
        (cases.into_iter().map(|c| json!(c)).collect(), next)
    })
}

/// `GET .../test_cases/{id or human id}`: the human id matches exactly (`TC-12`, not `tc-12`).
pub(super) async fn get_test_case(
    State(state): State<Arc<AppState>>,
    Path((project_id, wanted)): Path<(String, String)>,
) -> Response {
    let found = state
        .project_exists(&project_id)
        .then(|| {
            state
                .test_cases(&project_id)
                .into_iter()
                .find(|c| c.id == wanted || c.human_id == wanted)
        })
        .flatten();
    match found {
        Some(case) => json_answer(StatusCode::OK, json!({"message": "", "data": {"test_case": case}})),
        None => missing(&state),
    }
}
