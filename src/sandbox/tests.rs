//! The sandbox over real loopback HTTP: what a client sees, and what the sandbox stored.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use super::*;

const PROJECT: &str = "c47ade67-0543-4582-a4a5-b7de447c94f5";
const KEY: &str = "test-key";

fn example_body() -> Value {
    json!({
        "title": "Regression suite — patient portal",
        "description": "Executing regression test cases",
        "status": "ACTIVE",
        "project_id": PROJECT,
        "human_id": "DEMO-001",
        "selection_type": "STATIC",
        "static_selection_filters": [
            {"field": "id", "operator": "IN", "values": ["9ac271b6-4e89-4c93-8c75-2d625efa0b2d"]}
        ],
        "start_date": 1710675200,
        "end_date": 1710761600,
        "assignee_id": "cbbc40a5-26e9-4b88-8c27-3626c9fbdaa4",
        "label_names": ["Smoke", "Regression"],
        "environment_ids": []
    })
}

async fn sandbox(opts: SandboxOptions) -> Sandbox {
    Sandbox::start(opts, 0).await.expect("start sandbox")
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build client")
}

async fn post(sb: &Sandbox, key: Option<&str>, body: &Value) -> reqwest::Result<reqwest::Response> {
    let url = format!("{}/projects/{PROJECT}/test_runs", sb.base_url());
    let mut req = client().post(url).json(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await
}

async fn get(sb: &Sandbox, key: Option<&str>, path: &str) -> reqwest::Response {
    let mut req = client().get(format!("{}{path}", sb.base_url()));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.expect("GET answered")
}

fn assert_common_headers(answer: &reqwest::Response) {
    let headers = answer.headers();
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id");
    assert!(uuid::Uuid::try_parse(id).is_ok(), "x-request-id {id}");
    for name in ["x-tms-api-limit", "x-tms-api-remaining", "x-tms-api-reset"] {
        assert!(headers.contains_key(name), "{name} missing");
    }
}

/// Every stored run was counted and every counted run was stored.
fn assert_book_balanced(sb: &Sandbox) {
    assert_eq!(sb.stats().created, sb.runs().len() as u64);
}

#[tokio::test]
async fn create_answers_with_the_api_pages_shape_and_the_run_can_be_read_back() {
    let sb = sandbox(SandboxOptions::default()).await;
    let answer = post(&sb, Some(KEY), &example_body()).await.expect("answer");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_common_headers(&answer);
    assert_eq!(answer.headers()["content-type"], "application/json");
    let got: Value = answer.json().await.expect("json");
    assert_eq!(got["message"], "");
    let run = &got["data"]["test_run"];
    let keys: BTreeSet<&str> = run
        .as_object()
        .expect("test_run object")
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = [
        "id",
        "human_id",
        "created_at",
        "updated_at",
        "title",
        "description",
        "status",
        "project_id",
        "selection_type",
        "start_date",
        "end_date",
        "assignee_id",
        "label_names",
        "environment_ids",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want);
    assert_eq!(run["human_id"], "DEMO-R-1");
    assert_eq!(run["title"], example_body()["title"]);
    assert_eq!(run["label_names"], json!(["Smoke", "Regression"]));
    assert!(run["created_at"].is_i64());

    let stored = sb.runs();
    assert_eq!(stored.len(), 1);
    assert_eq!(run["id"], stored[0].id.as_str());
    assert_eq!(stored[0].body, example_body());
    assert_eq!(stored[0].project_id, PROJECT);
    let stats = sb.stats();
    assert_eq!((stats.posts_received, stats.created), (1, 1));

    let list: Value = get(&sb, Some(KEY), &format!("/projects/{PROJECT}/test_runs"))
        .await
        .json()
        .await
        .expect("list json");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["data"][0]["id"], run["id"]);
    for wanted in [stored[0].id.as_str(), "DEMO-R-1"] {
        let one = get(&sb, Some(KEY), &format!("/projects/{PROJECT}/test_runs/{wanted}")).await;
        assert_eq!(one.status(), StatusCode::OK, "{wanted}");
        let one: Value = one.json().await.expect("run json");
        assert_eq!(one["data"]["test_run"]["id"], run["id"]);
    }
    let missing = get(&sb, Some(KEY), &format!("/projects/{PROJECT}/test_runs/DEMO-R-9")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    sb.shutdown().await;
}

#[tokio::test]
async fn human_ids_are_numbered_per_project_with_the_sent_prefix() {
    let sb = sandbox(SandboxOptions::default()).await;
    let mut plain = example_body();
    plain.as_object_mut().map(|b| b.remove("human_id"));
    let mut got = Vec::new();
    for body in [example_body(), example_body(), plain] {
        let answer: Value = post(&sb, Some(KEY), &body)
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        got.push(answer["data"]["test_run"]["human_id"].clone());
    }
    assert_eq!(got, [json!("DEMO-R-1"), json!("DEMO-R-2"), json!("TR-R-3")]);
}

#[tokio::test]
async fn the_key_is_required_and_checked() {
    let cases = [
        (None, None, StatusCode::UNAUTHORIZED),
        (None, Some(""), StatusCode::UNAUTHORIZED),
        (Some(KEY), Some("wrong"), StatusCode::UNAUTHORIZED),
        (Some(KEY), Some(KEY), StatusCode::OK),
        (None, Some("anything"), StatusCode::OK),
    ];
    for (wanted, sent, status) in cases {
        let sb = sandbox(SandboxOptions {
            api_key: wanted.map(str::to_owned),
            ..SandboxOptions::default()
        })
        .await;
        let answer = post(&sb, sent, &example_body()).await.expect("answer");
        assert_eq!(answer.status(), status, "wanted {wanted:?}, sent {sent:?}");
        assert_common_headers(&answer);
        if status == StatusCode::UNAUTHORIZED {
            let got: Value = answer.json().await.expect("json");
            assert_eq!(got, json!({"code": 401, "message": "Unauthorized"}));
            assert!(sb.runs().is_empty());
            assert_eq!(sb.stats().unauthorized, 1);
            for path in ["/users", "/test_runs/statuses", &format!("/projects/{PROJECT}")] {
                assert_eq!(get(&sb, sent, path).await.status(), StatusCode::UNAUTHORIZED);
            }
        }
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_field() {
    let sb = sandbox(SandboxOptions::default()).await;
    let mut no_title = example_body();
    no_title.as_object_mut().map(|b| b.remove("title"));
    let mut extra = example_body();
    extra["test_cases"] = json!([]);
    let cases = [
        (no_title, StatusCode::UNPROCESSABLE_ENTITY, "title"),
        (extra, StatusCode::UNPROCESSABLE_ENTITY, "test_cases"),
        (json!("a string"), StatusCode::UNPROCESSABLE_ENTITY, "body"),
    ];
    for (body, status, field) in cases {
        let answer = post(&sb, Some(KEY), &body).await.expect("answer");
        assert_eq!(answer.status(), status);
        let got: Value = answer.json().await.expect("json");
        assert_eq!(got["message"], "Validation failed");
        assert_eq!(got["errors"]["code"], 422);
        let details = got["errors"]["details"].as_str().expect("details");
        assert!(details.starts_with(field), "{details}");
    }
    let malformed = client()
        .post(format!("{}/projects/{PROJECT}/test_runs", sb.base_url()))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .expect("answer");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let got: Value = malformed.json().await.expect("json");
    assert_eq!(got["errors"]["code"], 400);
    assert!(sb.runs().is_empty());
    assert_eq!(sb.stats().invalid, 4);
}

#[tokio::test]
async fn unknown_projects_are_404_when_projects_are_listed() {
    let other = "0b3c2a1d-0000-4000-8000-000000000001";
    let sb = sandbox(SandboxOptions {
        projects: Some(vec![other.to_owned()]),
        ..SandboxOptions::default()
    })
    .await;
    let answer = post(&sb, Some(KEY), &example_body()).await.expect("answer");
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let got: Value = answer.json().await.expect("json");
    assert_eq!(got, json!({"code": 404, "message": "Not Found"}));
    let known = get(&sb, Some(KEY), &format!("/projects/{other}")).await;
    assert_eq!(known.status(), StatusCode::OK);
    let known: Value = known.json().await.expect("json");
    assert_eq!(known["data"]["id"], other);
    let unknown = get(&sb, Some(KEY), &format!("/projects/{PROJECT}")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(sb.runs().is_empty());
}

#[tokio::test]
async fn the_rate_limit_refuses_the_third_request_in_a_second_like_the_real_service() {
    let sb = sandbox(SandboxOptions {
        rate_limit: Some(2),
        ..SandboxOptions::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let answer = post(&sb, Some(KEY), &example_body()).await.expect("answer");
        statuses.push(answer.status());
        if answer.status() == StatusCode::INTERNAL_SERVER_ERROR {
            assert!(answer.headers().get("retry-after").is_none());
            assert_eq!(answer.headers()["x-tms-api-remaining"], "0");
            let got: Value = answer.json().await.expect("json");
            assert_eq!(got, json!({"message": "rate limit exceeded"}));
        }
    }
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::OK, StatusCode::INTERNAL_SERVER_ERROR]
    );
    // The window is per key.
    let other = post(&sb, Some("another-key"), &example_body()).await.expect("answer");
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(sb.runs().len(), 3);
    let stats = sb.stats();
    assert_eq!((stats.rate_limited, stats.posts_received), (1, 4));
    assert_book_balanced(&sb);
}

/// What the client should see for a fault, and whether the run exists afterwards.
enum Seen {
    ConnectionError,
    Status(StatusCode),
    CutShortBody,
}

#[tokio::test]
async fn each_fault_behaves_as_documented() {
    let cases = [
        (Fault::ResetBeforeRead, Seen::ConnectionError, false),
        (Fault::ResetAfterRead, Seen::ConnectionError, true),
        (Fault::TruncatedBody, Seen::CutShortBody, true),
        (Fault::NonJson, Seen::Status(StatusCode::OK), true),
        (Fault::OkWithoutId, Seen::Status(StatusCode::OK), true),
        (
            Fault::ErrorAfterCreate,
            Seen::Status(StatusCode::INTERNAL_SERVER_ERROR),
            true,
        ),
        (
            Fault::Slow(Duration::from_millis(20)),
            Seen::Status(StatusCode::OK),
            true,
        ),
        (
            Fault::RetryAfterSeconds(2),
            Seen::Status(StatusCode::SERVICE_UNAVAILABLE),
            false,
        ),
        (
            Fault::RetryAfterDate(2),
            Seen::Status(StatusCode::TOO_MANY_REQUESTS),
            false,
        ),
        (
            Fault::RedirectTo("http://127.0.0.2:9/api/v1".into()),
            Seen::Status(StatusCode::PERMANENT_REDIRECT),
            false,
        ),
    ];
    for (fault, seen, creates) in cases {
        let sb = sandbox(SandboxOptions {
            faults: vec![FaultRule {
                fault: fault.clone(),
                probability: 1.0,
            }],
            ..SandboxOptions::default()
        })
        .await;
        let before = SystemTime::now();
        let result = post(&sb, Some(KEY), &example_body()).await;
        match seen {
            Seen::ConnectionError => {
                let err = result.expect_err("no answer expected");
                assert!(err.status().is_none() && !err.is_timeout(), "{fault:?}: {err}");
            }
            Seen::CutShortBody => {
                let answer = result.expect("headers arrive");
                assert_eq!(answer.status(), StatusCode::OK);
                let err = answer.bytes().await.expect_err("the body is cut short");
                assert!(err.is_body() || err.is_decode(), "{err}");
            }
            Seen::Status(status) => {
                let answer = result.expect("an answer");
                assert_eq!(answer.status(), status, "{fault:?}");
                assert_common_headers(&answer);
                check_answer(&fault, answer, before).await;
            }
        }
        assert_eq!(sb.runs().len(), usize::from(creates), "{fault:?}");
        let stats = sb.stats();
        assert_eq!((stats.posts_received, stats.faults_injected), (1, 1));
        assert_book_balanced(&sb);
        sb.shutdown().await;
    }
}

async fn check_answer(fault: &Fault, answer: reqwest::Response, before: SystemTime) {
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match fault {
        Fault::NonJson => {
            assert!(header("content-type").is_some_and(|t| t.starts_with("text/html")));
            assert!(answer.json::<Value>().await.is_err());
        }
        Fault::OkWithoutId => {
            let got: Value = answer.json().await.expect("json");
            assert!(got["data"]["test_run"].get("id").is_none());
            assert_eq!(got["data"]["test_run"]["human_id"], "DEMO-R-1");
        }
        Fault::Slow(_) => {
            let got: Value = answer.json().await.expect("json");
            assert!(got["data"]["test_run"]["id"].is_string());
        }
        Fault::RetryAfterSeconds(secs) => {
            assert_eq!(header("retry-after"), Some(secs.to_string()));
        }
        Fault::RetryAfterDate(_) => {
            let date = header("retry-after").expect("retry-after");
            let at = httpdate::parse_http_date(&date).expect("an HTTP date");
            // Two seconds ahead, less the sub-second part an HTTP date drops.
            assert!(at >= before + Duration::from_secs(1), "{date}");
        }
        Fault::RedirectTo(base) => {
            let want = format!("{base}/projects/{PROJECT}/test_runs");
            assert_eq!(header("location"), Some(want));
        }
        _ => {}
    }
}

#[tokio::test]
async fn a_slow_answer_still_creates_the_run_when_the_client_gives_up() {
    let sb = sandbox(SandboxOptions {
        faults: vec![FaultRule {
            fault: Fault::Slow(Duration::from_secs(3600)),
            probability: 1.0,
        }],
        ..SandboxOptions::default()
    })
    .await;
    let request = tokio::spawn(post_owned(sb.base_url()));
    // The run is stored before the delay starts: it is there while no answer is. (A client
    // timeout of its own could run out before the sandbox had read the request, on a
    // loaded machine, and the run would rightly not exist.)
    for _ in 0..6000 {
        if !sb.runs().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sb.runs().len(), 1);
    assert!(!request.is_finished(), "an answer came: {:?}", request.await);
    // The client gives up; the run stays.
    request.abort();
    let _ = request.await;
    assert_eq!(sb.runs().len(), 1);
    assert_eq!(sb.stats().posts_received, 1);
    sb.shutdown().await;
}

/// A create request with the example body, owning all it needs (for `tokio::spawn`).
async fn post_owned(base_url: String) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("{base_url}/projects/{PROJECT}/test_runs"))
        .bearer_auth(KEY)
        .json(&example_body())
        .send()
        .await
}

#[tokio::test]
async fn fail_rate_answers_500_or_503_without_creating() {
    let sb = sandbox(SandboxOptions {
        fail_rate: 1.0,
        ..SandboxOptions::default()
    })
    .await;
    for _ in 0..4 {
        let answer = post(&sb, Some(KEY), &example_body()).await.expect("answer");
        let status = answer.status();
        assert!(
            status == StatusCode::INTERNAL_SERVER_ERROR || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            let got: Value = answer.json().await.expect("json");
            assert_eq!(got, json!({"message": "Internal Server Error"}));
        }
    }
    assert!(sb.runs().is_empty());
    assert_eq!(sb.stats().faults_injected, 4);
}

#[tokio::test]
async fn a_seed_makes_the_bad_days_repeat() {
    async fn statuses(seed: u64) -> (Vec<u16>, usize) {
        let sb = sandbox(SandboxOptions {
            fail_rate: 0.4,
            faults: vec![parse_fault("no-id:0.3").expect("spec")],
            seed: Some(seed),
            ..SandboxOptions::default()
        })
        .await;
        let mut seen = Vec::new();
        for _ in 0..16 {
            let answer = post(&sb, Some(KEY), &example_body()).await.expect("answer");
            let status = answer.status().as_u16();
            let has_id = answer
                .json::<Value>()
                .await
                .is_ok_and(|v| v["data"]["test_run"]["id"].is_string());
            seen.push(if has_id { 1 } else { status });
        }
        assert_book_balanced(&sb);
        (seen, sb.runs().len())
    }
    let (first, created) = statuses(7).await;
    assert_eq!(statuses(7).await, (first.clone(), created));
    assert_eq!(created, first.iter().filter(|s| matches!(s, 1 | 200)).count());
    assert!(first.iter().any(|s| *s != 1), "some disruption in 16 draws: {first:?}");
}

#[tokio::test]
async fn anything_else_is_a_plain_404() {
    let sb = sandbox(SandboxOptions::default()).await;
    let cases = [
        (Method::GET, "/api/v1/nothing", Some(KEY)),
        (Method::GET, "/elsewhere", None),
        (Method::DELETE, "/api/v1/users", Some(KEY)),
        (Method::POST, "/api/v1/projects", Some(KEY)),
    ];
    for (method, path, key) in cases {
        let mut req = client().request(method.clone(), format!("http://{}{path}", sb.addr()));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let answer = req.send().await.expect("answer");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_common_headers(&answer);
        let got: Value = answer.json().await.expect("json");
        assert_eq!(got, json!({"code": 404, "message": "Not Found"}));
    }
    assert_eq!(sb.stats().posts_received, 0);
}

#[tokio::test]
async fn users_statuses_and_projects_answer_like_the_service() {
    let sb = sandbox(SandboxOptions::default()).await;
    let users: Value = get(&sb, Some(KEY), "/users").await.json().await.expect("json");
    let list = users["data"].as_array().expect("data is a bare array");
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["email"], "ada@example.com");
    for user in list {
        for field in ["id", "email", "first_name", "last_name"] {
            assert!(user[field].is_string(), "{field} in {user}");
        }
    }
    let statuses: Value = get(&sb, Some(KEY), "/test_runs/statuses")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(statuses["data"], json!(["ACTIVE", "CLOSED"]));
    let project = get(&sb, Some(KEY), &format!("/projects/{PROJECT}")).await;
    assert_eq!(project.status(), StatusCode::OK);
    let not_a_uuid = get(&sb, Some(KEY), "/projects/demo").await;
    assert_eq!(not_a_uuid.status(), StatusCode::NOT_FOUND);

    let custom = sandbox(SandboxOptions {
        users: Some(vec![User {
            id: "0b3c2a1d-0000-4000-8000-000000000002".into(),
            email: "qa@corp.test".into(),
            first_name: "Q".into(),
            last_name: "A".into(),
        }]),
        latency: Duration::from_millis(5),
        ..SandboxOptions::default()
    })
    .await;
    let users: Value = get(&custom, Some(KEY), "/users").await.json().await.expect("json");
    assert_eq!(users["data"][0]["email"], "qa@corp.test");
}

#[tokio::test]
async fn options_that_describe_no_service_are_refused() {
    let cases = [
        SandboxOptions {
            fail_rate: 1.5,
            ..SandboxOptions::default()
        },
        SandboxOptions {
            rate_limit: Some(0),
            ..SandboxOptions::default()
        },
        SandboxOptions {
            api_key: Some(" ".into()),
            ..SandboxOptions::default()
        },
        SandboxOptions {
            faults: vec![FaultRule {
                fault: Fault::NonJson,
                probability: f64::NAN,
            }],
            ..SandboxOptions::default()
        },
    ];
    for opts in cases {
        let err = Sandbox::start(opts.clone(), 0).await.err().expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{opts:?}");
    }
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sb = sandbox(SandboxOptions::default()).await;
    let base = sb.base_url();
    sb.shutdown().await;
    let err = client()
        .get(format!("{base}/users"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect_err("nothing listens any more");
    assert!(err.is_connect(), "{err}");
}

/// Sends with the test key: the status and the JSON answer.
async fn answer_of(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let answer = request.bearer_auth(KEY).send().await.expect("an answer");
    let status = answer.status();
    (status, answer.json().await.expect("json"))
}

/// Creates a run with the example body: the JSON answer.
async fn create_example(sb: &Sandbox) -> Value {
    let answer = post(sb, Some(KEY), &example_body()).await.expect("answer");
    answer.json().await.expect("json")
}

/// A GET with query parameters.
async fn get_query(sb: &Sandbox, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
    answer_of(client().get(format!("{}{path}", sb.base_url())).query(query)).await
}

async fn put(sb: &Sandbox, project: &str, run: &str, body: &Value) -> (StatusCode, Value) {
    let url = format!("{}/projects/{project}/test_runs/{run}", sb.base_url());
    answer_of(client().put(url).json(body)).await
}

#[tokio::test]
async fn a_listed_run_shows_its_stored_body_and_the_services_fields() {
    let sb = sandbox(SandboxOptions::default()).await;
    let created = create_example(&sb).await;
    let (_, list) = get_query(&sb, &format!("/projects/{PROJECT}/test_runs"), &[]).await;
    let listed = &list["data"][0];
    for (field, value) in example_body().as_object().expect("object") {
        if field != "human_id" {
            assert_eq!(&listed[field], value, "{field}");
        }
    }
    for field in ["id", "human_id", "created_at", "updated_at"] {
        assert_eq!(listed[field], created["data"]["test_run"][field], "{field}");
    }
    assert_eq!(list["next_cursor"], Value::Null);
}

#[tokio::test]
async fn every_request_counts_against_the_rate_limit_gets_included() {
    let sb = sandbox(SandboxOptions {
        rate_limit: Some(3),
        ..SandboxOptions::default()
    })
    .await;
    let run = sb.insert_run(PROJECT, example_body()).expect("seed");
    let paths = [
        format!("/projects/{PROJECT}/test_runs"),
        format!("/projects/{PROJECT}"),
        format!("/projects/{PROJECT}/test_runs/{}", run.id),
        format!("/projects/{PROJECT}/test_cases/TC-1"),
    ];
    let mut statuses = Vec::new();
    for path in &paths {
        statuses.push(get_query(&sb, path, &[]).await);
    }
    let codes: Vec<StatusCode> = statuses.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        codes,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::INTERNAL_SERVER_ERROR
        ]
    );
    assert_eq!(statuses[3].1, json!({"message": "rate limit exceeded"}));
    let answer = post(&sb, Some(KEY), &example_body()).await.expect("answer");
    assert_eq!(
        answer.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "the GETs used up the window"
    );
    let (status, _) = put(&sb, PROJECT, &run.id, &example_body()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let stats = sb.stats();
    assert_eq!((stats.rate_limited, stats.reads()), (3, 4));
    let sent = (stats.posts_received, stats.created, stats.puts_received, stats.updated);
    assert_eq!(sent, (1, 0, 1, 0));
}

#[tokio::test]
async fn busy_reads_refuse_the_first_gets_of_every_kind_but_not_creates_or_updates() {
    let sb = sandbox(SandboxOptions {
        busy_reads: 2,
        ..SandboxOptions::default()
    })
    .await;
    let answer = post(&sb, Some(KEY), &example_body()).await.expect("answer");
    assert_eq!(answer.status(), StatusCode::OK, "a POST is not a read");
    let id = sb.runs()[0].id.clone();
    let (status, _) = put(&sb, PROJECT, &id, &example_body()).await;
    assert_eq!(status, StatusCode::OK, "a PUT is not a read");
    let cases = [
        (
            format!("/projects/{PROJECT}/test_cases/TC-1"),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            format!("/projects/{PROJECT}/test_runs"),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (format!("/projects/{PROJECT}/test_cases"), StatusCode::OK),
        (format!("/projects/{PROJECT}/test_runs/DEMO-R-1"), StatusCode::OK),
    ];
    for (path, want) in cases {
        let (status, answer) = get_query(&sb, &path, &[]).await;
        assert_eq!(status, want, "{path}: {answer}");
    }
    assert_eq!(sb.stats().rate_limited, 2);
}

#[tokio::test]
async fn each_endpoint_is_counted_on_arrival() {
    let sb = sandbox(SandboxOptions {
        api_key: Some(KEY.into()),
        ..SandboxOptions::default()
    })
    .await;
    let answer = post(&sb, Some(KEY), &example_body()).await.expect("answer");
    assert_eq!(answer.status(), StatusCode::OK);
    let paths = [
        format!("/projects/{PROJECT}/test_runs"),
        format!("/projects/{PROJECT}/test_runs/DEMO-R-1"),
        format!("/projects/{PROJECT}/test_cases"),
        format!("/projects/{PROJECT}/test_cases/TC-2"),
        format!("/projects/{PROJECT}"),
        "/users".to_owned(),
        "/test_runs/statuses".to_owned(),
    ];
    for path in &paths {
        assert_eq!(get_query(&sb, path, &[]).await.0, StatusCode::OK, "{path}");
        // Refused for its key, and still counted.
        assert_eq!(get(&sb, Some("wrong"), path).await.status(), StatusCode::UNAUTHORIZED);
    }
    let id = sb.runs()[0].id.clone();
    assert_eq!(put(&sb, PROJECT, &id, &example_body()).await.0, StatusCode::OK);
    let stats = sb.stats();
    let counts = [
        stats.run_lists,
        stats.run_gets,
        stats.test_case_lists,
        stats.test_case_gets,
        stats.project_gets,
        stats.user_lists,
        stats.status_lists,
    ];
    assert_eq!(counts, [2; 7]);
    assert_eq!((stats.reads(), stats.unauthorized), (14, 7));
    let sent = (stats.posts_received, stats.created, stats.puts_received, stats.updated);
    assert_eq!(sent, (1, 1, 1, 1));
    let shown = stats.to_string();
    let want = "1 POSTs received, 1 runs created, 1 PUTs received, 1 runs updated, 14 GETs received";
    assert!(shown.contains(want), "{shown}");
}

const OTHER_PROJECT: &str = "0b3c2a1d-0000-4000-8000-000000000001";

/// The example body with another title, for `project`.
fn titled(project: &str, title: &str) -> Value {
    let mut body = example_body();
    body["title"] = json!(title);
    body["project_id"] = json!(project);
    body
}

#[tokio::test]
async fn seeded_runs_share_the_human_id_sequence_and_are_checked() {
    let sb = sandbox(SandboxOptions {
        projects: Some(vec![PROJECT.to_owned()]),
        ..SandboxOptions::default()
    })
    .await;
    let seeded = sb.insert_run(PROJECT, example_body()).expect("seed");
    let created = create_example(&sb).await;
    assert_eq!(seeded.human_id, "DEMO-R-1");
    assert_eq!(created["data"]["test_run"]["human_id"], "DEMO-R-2");
    assert_eq!((seeded.updates, seeded.updated_at), (0, seeded.created_at));
    let refused = [
        (
            OTHER_PROJECT,
            titled(OTHER_PROJECT, "t"),
            "is not one the sandbox serves",
        ),
        (PROJECT, titled(OTHER_PROJECT, "t"), "project_id"),
        (PROJECT, json!({"title": "t"}), "status: required"),
    ];
    for (project, body, want) in refused {
        let err = sb.insert_run(project, body).expect_err("refused");
        assert!(err.to_string().contains(want), "{err}");
    }
    let stats = sb.stats();
    assert_eq!((stats.seeded, stats.created), (1, 1));
    assert_eq!(stats.seeded + stats.created, sb.runs().len() as u64);
    assert_eq!(stats.reads(), 0, "seeding makes no requests");
}

/// Follows `next_cursor` from the first page to the last: every item, and the number of pages.
async fn walk(sb: &Sandbox, path: &str, query: &[(&str, &str)]) -> (Vec<Value>, usize) {
    let (mut items, mut pages) = (Vec::new(), 0);
    let mut cursor: Option<String> = None;
    loop {
        let mut query = query.to_vec();
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let (status, page) = get_query(sb, path, &query).await;
        assert_eq!(status, StatusCode::OK, "{path} {query:?}: {page}");
        assert_eq!(page["message"], "");
        items.extend(page["data"].as_array().expect("data is a bare array").iter().cloned());
        pages += 1;
        assert!(pages <= 1000, "the walk never ends");
        match &page["next_cursor"] {
            Value::Null => return (items, pages),
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor {other}"),
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["id"].as_str().expect("id").to_owned()).collect()
}

/// `count` runs titled `Run 1`... in `PROJECT`, with a run of `OTHER_PROJECT` after every tenth.
fn seed_runs(sb: &Sandbox, count: usize) -> Vec<StoredRun> {
    let mut seeded = Vec::new();
    for i in 1..=count {
        seeded.push(
            sb.insert_run(PROJECT, titled(PROJECT, &format!("Run {i}")))
                .expect("seed"),
        );
        if i % 10 == 0 {
            let other = titled(OTHER_PROJECT, &format!("Other run {i}"));
            sb.insert_run(OTHER_PROJECT, other).expect("seed other");
        }
    }
    seeded
}

#[tokio::test]
async fn paging_walks_every_run_once_in_creation_order() {
    let sb = sandbox(SandboxOptions::default()).await;
    let seeded = seed_runs(&sb, 250);
    let want: Vec<String> = seeded.iter().map(|r| r.id.clone()).collect();
    let path = format!("/projects/{PROJECT}/test_runs");
    let cases = [(None, 20, 13), (Some("20"), 20, 13), (Some("100"), 100, 3)];
    for (page_size, size, pages) in cases {
        let query: &[(&str, &str)] = match &page_size {
            Some(n) => &[("page_size", n)],
            None => &[],
        };
        let before = sb.stats().run_lists;
        let (items, walked) = walk(&sb, &path, query).await;
        assert_eq!(ids(&items), want, "{query:?}: every run once, in creation order");
        assert_eq!(walked, pages, "{query:?}");
        assert_eq!(sb.stats().run_lists - before, pages as u64, "{query:?}");
        let (_, first) = get_query(&sb, &path, query).await;
        assert_eq!(first["data"].as_array().map(Vec::len), Some(size), "{query:?}");
    }
    let other: Vec<String> = walk(&sb, &format!("/projects/{OTHER_PROJECT}/test_runs"), &[])
        .await
        .0
        .iter()
        .map(|r| r["title"].as_str().expect("title").to_owned())
        .collect();
    assert_eq!(other.len(), 25);
    assert!(other.iter().all(|t| t.starts_with("Other run")), "{other:?}");
    let stats = sb.stats();
    assert_eq!((stats.seeded, stats.created, stats.posts_received), (275, 0, 0));
    assert_eq!(stats.seeded, sb.runs().len() as u64);
}

#[tokio::test]
async fn page_size_is_clamped_to_100_and_must_be_a_positive_number() {
    let sb = sandbox(SandboxOptions::default()).await;
    seed_runs(&sb, 120);
    let path = format!("/projects/{PROJECT}/test_runs");
    let cases = [
        ("1", Some(1)),
        ("100", Some(100)),
        ("101", Some(100)),
        ("5000", Some(100)),
        ("0", None),
        ("-1", None),
        ("ten", None),
        ("", None),
    ];
    for (size, want) in cases {
        let (status, answer) = get_query(&sb, &path, &[("page_size", size)]).await;
        match want {
            Some(len) => {
                assert_eq!(status, StatusCode::OK, "{size}: {answer}");
                assert_eq!(answer["data"].as_array().map(Vec::len), Some(len), "{size}");
                assert!(answer["next_cursor"].is_string(), "{size}");
            }
            None => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{size}: {answer}");
                assert_eq!(answer["errors"]["code"], 400, "{size}");
                let details = answer["errors"]["details"].as_str().expect("details");
                assert!(details.starts_with("page_size:"), "{size}: {details}");
            }
        }
    }
    assert_eq!(sb.stats().invalid, 4);
}

#[tokio::test]
async fn the_title_filter_ignores_case_and_pages_too() {
    let sb = sandbox(SandboxOptions::default()).await;
    let titles = [
        "Nightly regression",
        "nightly smoke",
        "Weekly regression",
        "NIGHTLY load",
        "Release 2.0",
    ];
    for title in titles {
        sb.insert_run(PROJECT, titled(PROJECT, title)).expect("seed");
    }
    sb.insert_run(OTHER_PROJECT, titled(OTHER_PROJECT, "Nightly elsewhere"))
        .expect("seed");
    let path = format!("/projects/{PROJECT}/test_runs");
    let cases: [(&str, &[&str]); 5] = [
        ("nightly", &["Nightly regression", "nightly smoke", "NIGHTLY load"]),
        ("REGRESSION", &["Nightly regression", "Weekly regression"]),
        ("Release 2.0", &["Release 2.0"]),
        ("", &titles),
        ("nothing like it", &[]),
    ];
    for (part, want) in cases {
        for size in ["1", "2", "20"] {
            let (items, _) = walk(&sb, &path, &[("title__CONTAINS", part), ("page_size", size)]).await;
            let got: Vec<&str> = items.iter().map(|r| r["title"].as_str().expect("title")).collect();
            assert_eq!(got, want, "{part:?}, page_size {size}");
        }
    }
}

#[tokio::test]
async fn cursors_the_sandbox_did_not_issue_are_refused() {
    let sb = sandbox(SandboxOptions::default()).await;
    seed_runs(&sb, 30);
    let runs = format!("/projects/{PROJECT}/test_runs");
    let (_, first) = get_query(&sb, &runs, &[]).await;
    let issued = first["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, other) = get_query(
        &sb,
        &format!("/projects/{OTHER_PROJECT}/test_runs"),
        &[("page_size", "1")],
    )
    .await;
    let other_project = other["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, cases_page) = get_query(&sb, &format!("/projects/{PROJECT}/test_cases"), &[]).await;
    let other_list = cases_page["next_cursor"].as_str().expect("a next page").to_owned();
    let forged = hex::encode(format!("test_runs:{PROJECT}:5"));
    let refused = ["nonsense", "", &forged, &other_project, &other_list];
    for cursor in refused {
        let (status, answer) = get_query(&sb, &runs, &[("cursor", cursor)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cursor:?}: {answer}");
        assert_eq!(answer["errors"]["code"], 400);
        let details = answer["errors"]["details"].as_str().expect("details");
        assert!(details.starts_with("cursor:"), "{details}");
    }
    assert_eq!(sb.stats().invalid, refused.len() as u64);
    let (status, second) = get_query(&sb, &runs, &[("cursor", &issued)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["data"][0]["title"], "Run 21");
}

#[tokio::test]
async fn a_run_is_read_by_id_or_human_id_and_anything_else_is_404() {
    let sb = sandbox(SandboxOptions {
        projects: Some(vec![PROJECT.to_owned(), OTHER_PROJECT.to_owned()]),
        ..SandboxOptions::default()
    })
    .await;
    let run = sb.insert_run(PROJECT, example_body()).expect("seed");
    let elsewhere = sb
        .insert_run(OTHER_PROJECT, titled(OTHER_PROJECT, "elsewhere"))
        .expect("seed");
    let unknown_project = "9ac271b6-4e89-4c93-8c75-2d625efa0b2d";
    let cases = [
        (PROJECT, run.id.as_str(), true),
        (PROJECT, "DEMO-R-1", true),
        (PROJECT, "demo-r-1", false),
        (PROJECT, "DEMO-R-2", false),
        (PROJECT, elsewhere.id.as_str(), false),
        (unknown_project, run.id.as_str(), false),
    ];
    for (project, wanted, found) in cases {
        let (status, answer) = get_query(&sb, &format!("/projects/{project}/test_runs/{wanted}"), &[]).await;
        if found {
            assert_eq!(status, StatusCode::OK, "{wanted}");
            assert_eq!(answer["message"], "");
            let shown = &answer["data"]["test_run"];
            assert_eq!(shown["id"], run.id.as_str());
            assert_eq!(shown["human_id"], "DEMO-R-1");
            assert_eq!(shown["project_id"], PROJECT);
            assert_eq!(
                shown["static_selection_filters"],
                example_body()["static_selection_filters"]
            );
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{project} {wanted}");
            assert_eq!(answer, json!({"code": 404, "message": "Not Found"}));
        }
    }
    let stats = sb.stats();
    assert_eq!((stats.run_gets, stats.not_found), (6, 4));
}

#[tokio::test]
async fn put_replaces_the_body_and_answers_like_the_create() {
    let sb = sandbox(SandboxOptions::default()).await;
    let created = create_example(&sb).await;
    let created = &created["data"]["test_run"];
    let id = created["id"].as_str().expect("id");
    let mut changed = example_body();
    changed["title"] = json!("Regression suite — renamed");
    changed["status"] = json!("CLOSED");
    changed["label_names"] = json!(["Smoke"]);
    changed.as_object_mut().map(|b| b.remove("description"));
    let (status, answer) = put(&sb, PROJECT, id, &changed).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["message"], "");
    let updated = &answer["data"]["test_run"];
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().expect("object").keys().cloned().collect() };
    let mut want_keys = keys(created);
    want_keys.remove("description");
    assert_eq!(keys(updated), want_keys);
    for field in ["id", "human_id", "created_at", "project_id"] {
        assert_eq!(updated[field], created[field], "{field} kept");
    }
    assert_eq!(updated["title"], "Regression suite — renamed");
    assert_eq!(updated["status"], "CLOSED");
    assert!(updated["updated_at"].as_i64() >= created["updated_at"].as_i64());

    let stored = &sb.runs()[0];
    assert_eq!(stored.body, changed);
    assert_eq!((stored.updates, stored.id.as_str()), (1, id));
    assert_eq!(stored.updated_at, updated["updated_at"].as_i64().expect("updated_at"));
    let (_, read) = get_query(&sb, &format!("/projects/{PROJECT}/test_runs/{id}"), &[]).await;
    assert_eq!(read["data"]["test_run"]["title"], "Regression suite — renamed");
    assert!(read["data"]["test_run"].get("description").is_none());
    let stats = sb.stats();
    assert_eq!((stats.puts_received, stats.updated, stats.created), (1, 1, 1));
    assert_eq!(sb.runs().len(), 1);
}

#[tokio::test]
async fn put_refuses_unknown_runs_and_bad_bodies() {
    let sb = sandbox(SandboxOptions {
        projects: Some(vec![PROJECT.to_owned(), OTHER_PROJECT.to_owned()]),
        ..SandboxOptions::default()
    })
    .await;
    let run = sb.insert_run(PROJECT, example_body()).expect("seed");
    let mut no_title = example_body();
    no_title.as_object_mut().map(|b| b.remove("title"));
    let unknown_project = "9ac271b6-4e89-4c93-8c75-2d625efa0b2d";
    let random_id = "7b2f9c14-58a1-4d2e-9f3a-6c1e8d40a2b9";
    let cases = [
        (PROJECT, random_id, example_body(), StatusCode::NOT_FOUND, ""),
        (PROJECT, "DEMO-R-1", example_body(), StatusCode::NOT_FOUND, ""),
        (
            OTHER_PROJECT,
            run.id.as_str(),
            titled(OTHER_PROJECT, "t"),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            unknown_project,
            run.id.as_str(),
            example_body(),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            PROJECT,
            run.id.as_str(),
            no_title,
            StatusCode::UNPROCESSABLE_ENTITY,
            "title",
        ),
        (
            PROJECT,
            run.id.as_str(),
            titled(OTHER_PROJECT, "t"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "project_id",
        ),
        (
            PROJECT,
            run.id.as_str(),
            json!([]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body",
        ),
    ];
    for (project, id, body, status, field) in cases {
        let (got, answer) = put(&sb, project, id, &body).await;
        assert_eq!(got, status, "{project} {id}: {answer}");
        if status == StatusCode::NOT_FOUND {
            assert_eq!(answer, json!({"code": 404, "message": "Not Found"}));
        } else {
            assert_eq!(answer["errors"]["code"], 422);
            let details = answer["errors"]["details"].as_str().expect("details");
            assert!(details.starts_with(field), "{details}");
        }
    }
    let malformed = client()
        .put(format!("{}/projects/{PROJECT}/test_runs/{}", sb.base_url(), run.id))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .expect("answer");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sb.runs(), vec![run], "nothing changed");
    let stats = sb.stats();
    assert_eq!(
        (stats.puts_received, stats.updated, stats.invalid, stats.not_found),
        (8, 0, 4, 4)
    );
}

#[tokio::test]
async fn test_cases_are_read_by_id_or_human_id() {
    let custom = TestCase {
        id: "3f1e2d4c-5b6a-4789-8abc-def012345678".into(),
        human_id: "QA-7".into(),
        title: "Login works".into(),
        project_id: OTHER_PROJECT.into(),
    };
    let builtin = sandbox(SandboxOptions::default()).await;
    let listed = sandbox(SandboxOptions {
        test_cases: Some(vec![custom.clone()]),
        ..SandboxOptions::default()
    })
    .await;
    let tc30 = builtin_test_case_id(PROJECT, 30);
    // Where found: the human id and title.
    type Found<'a> = Option<(&'a str, &'a str)>;
    let cases: [(&Sandbox, &str, &str, Found); 8] = [
        (&builtin, PROJECT, "TC-1", Some(("TC-1", "Sandbox test case 1"))),
        (&builtin, PROJECT, &tc30, Some(("TC-30", "Sandbox test case 30"))),
        (
            &builtin,
            OTHER_PROJECT,
            "TC-12",
            Some(("TC-12", "Sandbox test case 12")),
        ),
        (&builtin, PROJECT, "TC-31", None),
        (&builtin, PROJECT, "tc-1", None),
        (&builtin, OTHER_PROJECT, &tc30, None),
        (&listed, OTHER_PROJECT, &custom.id, Some(("QA-7", "Login works"))),
        (&listed, PROJECT, "TC-1", None),
    ];
    for (sb, project, wanted, found) in cases {
        let (status, answer) = get_query(sb, &format!("/projects/{project}/test_cases/{wanted}"), &[]).await;
        let Some((human_id, title)) = found else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{project} {wanted}");
            assert_eq!(answer, json!({"code": 404, "message": "Not Found"}));
            continue;
        };
        assert_eq!(status, StatusCode::OK, "{project} {wanted}");
        assert_eq!(answer["message"], "");
        let case = &answer["data"]["test_case"];
        assert_eq!(
            (case["human_id"].as_str(), case["title"].as_str()),
            (Some(human_id), Some(title))
        );
        assert_eq!(case["project_id"], project);
        let id = case["id"].as_str().expect("id");
        assert!(uuid::Uuid::try_parse(id).is_ok(), "{id}");
    }
    assert_eq!(builtin.stats().test_case_gets, 6);
    assert_eq!(builtin.stats().not_found, 3);
}

#[test]
fn builtin_test_case_ids_are_stable_and_differ_by_project_and_number() {
    let ids: BTreeSet<String> = [PROJECT, OTHER_PROJECT]
        .into_iter()
        .flat_map(|p| (1..=BUILTIN_TEST_CASES).map(move |n| builtin_test_case_id(p, n)))
        .collect();
    assert_eq!(ids.len(), 2 * BUILTIN_TEST_CASES as usize);
    assert_eq!(builtin_test_case_id(PROJECT, 1), builtin_test_case_id(PROJECT, 1));
    let cases = builtin_test_cases(PROJECT);
    assert_eq!(cases.len(), 30);
    assert_eq!(cases[11].human_id, "TC-12");
    assert_eq!(cases[11].id, builtin_test_case_id(PROJECT, 12));
}

#[tokio::test]
async fn test_cases_are_paged_like_runs() {
    let mine: Vec<TestCase> = (1..=45)
        .map(|n| TestCase {
            id: uuid::Uuid::new_v4().to_string(),
            human_id: format!("QA-{n}"),
            title: format!("Case {n}"),
            project_id: OTHER_PROJECT.into(),
        })
        .collect();
    let builtin = sandbox(SandboxOptions::default()).await;
    let listed = sandbox(SandboxOptions {
        test_cases: Some(mine.clone()),
        ..SandboxOptions::default()
    })
    .await;
    let want_builtin: Vec<String> = builtin_test_cases(PROJECT).into_iter().map(|c| c.id).collect();
    let want_listed: Vec<String> = mine.into_iter().map(|c| c.id).collect();
    let cases: [(&Sandbox, &str, &str, &[String], usize); 5] = [
        (&builtin, PROJECT, "20", &want_builtin, 2),
        (&builtin, PROJECT, "7", &want_builtin, 5),
        (&builtin, PROJECT, "100", &want_builtin, 1),
        (&listed, OTHER_PROJECT, "20", &want_listed, 3),
        (&listed, PROJECT, "20", &[], 1),
    ];
    for (sb, project, size, want, pages) in cases {
        let path = format!("/projects/{project}/test_cases");
        let (items, walked) = walk(sb, &path, &[("page_size", size)]).await;
        assert_eq!(ids(&items), want, "{project}, page_size {size}");
        assert_eq!(walked, pages, "{project}, page_size {size}");
    }
    let (status, _) = get_query(
        &builtin,
        &format!("/projects/{PROJECT}/test_cases"),
        &[("page_size", "0")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(builtin.stats().test_case_lists, 9);
}
