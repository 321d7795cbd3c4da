//! The sandbox's HTTP surface: routes, the key and rate-limit gate, the headers every
//! answer carries, the create and update endpoints, and how each fault looks on the wire.
//! The read-only endpoints of projects' runs and test cases are in `lookup`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper::body::{Frame, SizeHint};
use serde_json::{Map, Value, json};

use super::body::{BodyError, check_body};
use super::conn::ConnAbort;
use super::lookup::{get_run, get_test_case, list_runs, list_test_cases};
use super::state::{AppState, Disruption, Endpoint, Refusal};
use super::{API_ROOT, Fault, StoredRun};

const RUNS_ROUTE: &str = "/api/v1/projects/{project_id}/test_runs";
const RUN_ROUTE: &str = "/api/v1/projects/{project_id}/test_runs/{run}";
const CASES_ROUTE: &str = "/api/v1/projects/{project_id}/test_cases";
const CASE_ROUTE: &str = "/api/v1/projects/{project_id}/test_cases/{case}";
const PROJECT_ROUTE: &str = "/api/v1/projects/{project_id}";
const USERS_ROUTE: &str = "/api/v1/users";
const STATUSES_ROUTE: &str = "/api/v1/test_runs/statuses";
/// Generous for a test run; larger bodies are refused before parsing.
const MAX_BODY_BYTES: usize = 1 << 20;

pub(super) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(RUNS_ROUTE, get(list_runs).post(create_run))
        .route(RUN_ROUTE, get(get_run).put(update_run))
        .route(CASES_ROUTE, get(list_test_cases))
        .route(CASE_ROUTE, get(get_test_case))
        .route(PROJECT_ROUTE, get(get_project))
        .route(USERS_ROUTE, get(list_users))
        .route(STATUSES_ROUTE, get(list_statuses))
        // Only matched routes need a key: anything else is a plain 404.
        .route_layer(middleware::from_fn_with_state(state.clone(), gate))
        .fallback(not_found_route)
        .method_not_allowed_fallback(not_found_route)
        .layer(middleware::from_fn_with_state(state.clone(), envelope))
        .with_state(state)
}

/// The key from `Authorization: Bearer <key>`, if one is there and not blank.
fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

pub(super) fn json_answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// The plain `{"code":N,"message":...}` error body.
fn error(status: StatusCode, message: &str) -> Response {
    json_answer(status, json!({"code": status.as_u16(), "message": message}))
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// The validation-style error body the real service uses for 400 and 422.
fn validation_error(status: StatusCode, message: &str, details: &str) -> Response {
    json_answer(
        status,
        json!({
            "message": message,
            "errors": {"code": status.as_u16(), "message": status.canonical_reason(), "details": details}
        }),
    )
}

/// A run as the reads show it: its stored body whole, with the sandbox's own id, human
/// id, project and times.
pub(super) fn stored_view(run: &StoredRun) -> Value {
    let mut fields = match &run.body {
        Value::Object(body) => body.clone(),
        _ => Map::new(),
    };
    fields.insert("id".into(), json!(run.id));
    fields.insert("human_id".into(), json!(run.human_id));
    fields.insert("project_id".into(), json!(run.project_id));
    fields.insert("created_at".into(), json!(run.created_at));
    fields.insert("updated_at".into(), json!(run.updated_at));
    Value::Object(fields)
}

/// A run as the create and update answers show it: the api page's response fields, which
/// are [`stored_view`]'s minus `static_selection_filters`.
fn view(run: &StoredRun) -> Value {
    let mut shown = stored_view(run);
    if let Value::Object(fields) = &mut shown {
        fields.remove("static_selection_filters");
    }
    shown
}

fn created_body(run: &StoredRun) -> Value {
    json!({"message": "", "data": {"test_run": view(run)}})
}

/// Outermost layer: latency, then the headers every answer carries.
async fn envelope(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let key = bearer_key(req.headers()).map(str::to_owned);
    let mut answer = next.run(req).await;
    if !state.opts.latency.is_zero() {
        tokio::time::sleep(state.opts.latency).await;
    }
    let quota = state.quota(key.as_deref());
    let headers = answer.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-request-id", id);
    }
    headers.insert("x-tms-api-limit", quota.limit.into());
    headers.insert("x-tms-api-remaining", quota.remaining.into());
    headers.insert("x-tms-api-reset", quota.reset_secs.into());
    answer
}

/// Which endpoint a request on a matched route asks for; `None` for a HEAD.
fn endpoint(method: &Method, route: &str) -> Option<Endpoint> {
    let endpoint = match (method.as_str(), route) {
        ("POST", RUNS_ROUTE) => Endpoint::CreateRun,
        ("GET", RUNS_ROUTE) => Endpoint::ListRuns,
        ("GET", RUN_ROUTE) => Endpoint::GetRun,
        ("PUT", RUN_ROUTE) => Endpoint::UpdateRun,
        ("GET", CASES_ROUTE) => Endpoint::ListTestCases,
        ("GET", CASE_ROUTE) => Endpoint::GetTestCase,
        ("GET", PROJECT_ROUTE) => Endpoint::GetProject,
        ("GET", USERS_ROUTE) => Endpoint::ListUsers,
        ("GET", STATUSES_ROUTE) => Endpoint::ListStatuses,
        _ => return None,
    };
    Some(endpoint)
}

/// On matched routes: counts the request, then checks the bearer key and the rate limit,
/// at arrival.
async fn gate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|route| endpoint(req.method(), route.as_str()));
    match state.admit(bearer_key(req.headers()), endpoint) {
        Ok(()) => next.run(req).await,
        Err(Refusal::Unauthorized) => error(StatusCode::UNAUTHORIZED, "Unauthorized"),
        // The real service answers 500, not 429, and sends no Retry-After.
        Err(Refusal::RateLimited) => json_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "rate limit exceeded"}),
        ),
    }
}

async fn not_found_route(State(state): State<Arc<AppState>>) -> Response {
    missing(&state)
}

/// The 404 for an unknown route, project, run or test case, counted.
pub(super) fn missing(state: &AppState) -> Response {
    state.count(|s| s.not_found += 1);
    not_found()
}

/// A 400 or 422 in the validation shape, counted.
pub(super) fn refuse(state: &AppState, status: StatusCode, message: &str, details: &str) -> Response {
    state.count(|s| s.invalid += 1);
    validation_error(status, message, details)
}

/// The request body, when it has the contract's shape for this project.
async fn read_body(state: &AppState, project_id: &str, body: Body) -> Result<Map<String, Value>, Response> {
    let raw = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        let details = format!("the body could not be read (at most {MAX_BODY_BYTES} bytes): {e}");
        refuse(state, StatusCode::BAD_REQUEST, "Bad Request", &details)
    })?;
    check_body(project_id, &raw).map_err(|e| {
        let (status, message) = match e {
            BodyError::Malformed(_) => (StatusCode::BAD_REQUEST, "Malformed JSON"),
            BodyError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Validation failed"),
        };
        refuse(state, status, message, &e.to_string())
    })
}

async fn create_run(
    State(state): State<Arc<AppState>>,
    Path(project_id): Path<String>,
    Extension(abort): Extension<ConnAbort>,
    req: Request,
) -> Response {
    if !state.project_exists(&project_id) {
        return missing(&state);
    }
    let path_and_query = req.uri().path_and_query().map_or(req.uri().path(), |pq| pq.as_str());
    let below_root = path_and_query
        .strip_prefix(API_ROOT)
        .unwrap_or(path_and_query)
        .to_owned();
    let body = match read_body(&state, &project_id, req.into_body()).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let fault = match state.draw_disruption() {
        None => None,
        Some(Disruption::Fail(status)) => return error(status, "Service Unavailable"),
        Some(Disruption::Fault(fault)) => Some(fault),
    };
    if let Some(answer) = answer_before_create(fault.as_ref(), &abort, &below_root).await {
        return answer;
    }
    let run = state.create(&project_id, body);
    answer_after_create(fault, &run, abort).await
}

/// The answer of a fault that answers or vanishes before anything is created.
async fn answer_before_create(fault: Option<&Fault>, abort: &ConnAbort, below_root: &str) -> Option<Response> {
    let answer = match fault? {
        Fault::ResetBeforeRead => vanish(abort).await,
        Fault::RetryAfterSeconds(secs) => {
            let mut answer = error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            answer.headers_mut().insert(header::RETRY_AFTER, (*secs).into());
            answer
        }
        Fault::RetryAfterDate(secs) => {
            let at = SystemTime::now() + Duration::from_secs(*secs);
            let mut answer = error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
                answer.headers_mut().insert(header::RETRY_AFTER, date);
            }
            answer
        }
        Fault::RedirectTo(base) => redirect(base, below_root),
        _ => return None,
    };
    Some(answer)
}

/// The answer to a create that stored `run`, as the fault (if any) makes it look.
async fn answer_after_create(fault: Option<Fault>, run: &StoredRun, abort: ConnAbort) -> Response {
    match fault {
        Some(Fault::ResetAfterRead) => vanish(&abort).await,
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            json_answer(StatusCode::OK, created_body(run))
        }
        Some(Fault::TruncatedBody) => truncated(created_body(run), abort),
        Some(Fault::NonJson) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html>\n<html><head><title>Testsigma</title></head>\
             <body><h1>Something went wrong</h1></body></html>\n",
        )
            .into_response(),
        Some(Fault::OkWithoutId) => {
            let mut shown = view(run);
            if let Value::Object(fields) = &mut shown {
                fields.remove("id");
            }
            json_answer(StatusCode::OK, json!({"message": "", "data": {"test_run": shown}}))
        }
        Some(Fault::ErrorAfterCreate) => json_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "Internal Server Error"}),
        ),
        _ => json_answer(StatusCode::OK, created_body(run)),
    }
}

/// `PUT .../test_runs/{id}`: replaces the body of the run with that id (a human id is not
/// accepted: the vendor names this "Update Test Run by ID"). 404 before the body is read
/// when the project or run is unknown; the body is then checked like a create's.
async fn update_run(
    State(state): State<Arc<AppState>>,
    Path((project_id, run_id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let known =
        state.project_exists(&project_id) && state.find_run(&project_id, &run_id).is_some_and(|run| run.id == run_id);
    if !known {
        return missing(&state);
    }
    let body = match read_body(&state, &project_id, req.into_body()).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    match state.update(&project_id, &run_id, body) {
        Some(run) => json_answer(StatusCode::OK, created_body(&run)),
        None => missing(&state),
    }
}

/// Ends the connection with no answer: the connection task drops it while this waits.
async fn vanish(abort: &ConnAbort) -> Response {
    abort.reset();
    std::future::pending().await
}

fn redirect(base: &str, below_root: &str) -> Response {
    let location = format!("{base}{below_root}");
    match HeaderValue::from_str(&location) {
        Ok(location) => {
            let mut answer = error(StatusCode::PERMANENT_REDIRECT, "Permanent Redirect");
            answer.headers_mut().insert(header::LOCATION, location);
            answer
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "redirect fault: the target URL is not a valid header value",
        ),
    }
}

/// A 200 whose `Content-Length` promises the whole body but only half of it is sent
/// before the connection closes.
fn truncated(body: Value, abort: ConnAbort) -> Response {
    let full = Bytes::from(body.to_string());
    let cut = CutShort {
        full_len: full.len() as u64,
        head: Some(full.slice(..full.len() / 2)),
        abort,
    };
    let mut answer = Response::new(Body::new(cut));
    answer
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    answer
}

struct CutShort {
    full_len: u64,
    head: Option<Bytes>,
    abort: ConnAbort,
}

impl hyper::body::Body for CutShort {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        // hyper flushes what it has written when the body is pending, and the
        // connection task then drops the connection: the client gets half a body.
        self.abort.close();
        Poll::Pending
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.full_len)
    }
}

async fn get_project(State(state): State<Arc<AppState>>, Path(project_id): Path<String>) -> Response {
    if !state.project_exists(&project_id) {
        return missing(&state);
    }
    let short: String = project_id.chars().take(8).collect();
    json_answer(
        StatusCode::OK,
        json!({"message": "", "data": {"id": project_id, "name": format!("Sandbox project {short}")}}),
    )
}

async fn list_users(State(state): State<Arc<AppState>>) -> Response {
    json_answer(StatusCode::OK, json!({"message": "", "data": state.users}))
}

async fn list_statuses() -> Response {
    json_answer(StatusCode::OK, json!({"message": "", "data": ["ACTIVE", "CLOSED"]}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_key_needs_the_scheme_and_a_key() {
        let cases = [
            (Some("Bearer abc"), Some("abc")),
            (Some("bearer  abc "), Some("abc")),
            (Some("Bearer "), None),
            (Some("Bearer"), None),
            (Some("Basic abc"), None),
            (Some("abc"), None),
            (None, None),
        ];
        for (value, want) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            }
            assert_eq!(bearer_key(&headers), want, "header {value:?}");
        }
    }
}
