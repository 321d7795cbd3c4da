//! `check`: everything `import` would check, plus read-only calls to the service: the
//! key is accepted, each project exists, each assignee e-mail resolves. Creates nothing.

use std::collections::BTreeMap;

use crate::cli::CheckArgs;
use crate::exit::{Exit, SetupError};
use crate::ledger::policy::{Rerun, Verdict, judge};
use crate::ledger::{KeySpec, LedgerSnapshot, row_key, scope};
use crate::request::PlannedRow;
use crate::service::runs::Wanted;
use crate::service::users::resolve_assignee;
use crate::service::{ApiClient, ApiError, connect};
use crate::settings::{default_state, load_config, resolve_read, resolve_service};
use crate::ui::problems::ProblemPrinter;
use crate::ui::{plural, problem, say, warn};
use crate::validate::stage::{ReadStage, RowEvent, open_read_stage};

pub async fn run_check(args: &CheckArgs) -> anyhow::Result<Exit> {
    let (config, config_path) = load_config(args.read.config.as_deref())?;
    let read = resolve_read(&args.read, &config)?;
    let service = resolve_service(&args.service, &config, config_path.as_deref())?;
    let mut stage = open_read_stage(&read, &warn)?;
    let offline = check_rows(&mut stage)?;
    // A quiet night for an import (exit 0), so no failure for its check either.
    if offline.rows == 0 {
        say(&format!(
            "{}: no data rows below the header row {}: nothing to check, and an import would send nothing",
            read.input.display_name(),
            stage.failed_rows_shape().header_row
        ));
        return Ok(Exit::Ok);
    }
    say(&format!(
        "file: {}, {} valid, {} invalid",
        plural(offline.rows, "row"),
        offline.rows - offline.invalid,
        offline.invalid
    ));
    let (client, _sandbox) = connect(&service, false).await?;
    let mut service_problems = check_at_service(&client, &offline, service.key_source.as_deref()).await?;
    let mut to_send = offline.planned.len();
    if service_problems == 0 {
        let ledger = default_state(&read.input)
            .ok()
            .and_then(|path| LedgerSnapshot::read(&path).ok().flatten());
        let rerun = Rerun {
            lookup: true,
            settle_after: service.timeout,
            ..Rerun::default()
        };
        match what_exists(&client, &offline, ledger.as_ref(), &rerun).await {
            Ok((line, sent)) => {
                say(&line);
                to_send = sent;
            }
            Err(e) => {
                service_problems += 1;
                problem(&format!("invalid: {e:#}"));
            }
        }
    }
    if offline.invalid + service_problems == 0 {
        if to_send == offline.rows {
            say("check passed: nothing was created; `import` with the same options will send every row");
        } else {
            say(&format!(
                "check passed: nothing was created; `import` with the same options will send {}",
                plural(to_send, "row")
            ));
        }
        Ok(Exit::Ok)
    } else {
        say(&format!(
            "check failed: {} invalid, {} found by the service (exit 3)",
            plural(offline.invalid, "row"),
            plural(service_problems, "problem")
        ));
        Ok(Exit::Invalid)
    }
}

/// What the file alone says: its rows, the invalid ones, and what the service must know.
struct Offline {
    rows: usize,
    invalid: usize,
    /// Each project, with the rows that use it.
    projects: BTreeMap<String, Vec<usize>>,
    /// Each assignee given as an e-mail address, with the rows that use it.
    emails: BTreeMap<String, Vec<usize>>,
    /// Test case human ids, by project, with the rows that give them.
    cases: BTreeMap<String, BTreeMap<String, Vec<usize>>>,
    /// The valid rows' requests.
    planned: Vec<PlannedRow>,
    key: KeySpec,
}

/// Reads and validates every row, saying each problem.
fn check_rows(stage: &mut ReadStage) -> anyhow::Result<Offline> {
    stage.tell_column_problems(&problem);
    let mut printer = ProblemPrinter::new(50);
    let mut offline = Offline {
        rows: 0,
        invalid: 0,
        projects: BTreeMap::new(),
        emails: BTreeMap::new(),
        cases: BTreeMap::new(),
        planned: Vec::new(),
        key: stage.key().clone(),
    };
    offline.rows = stage.for_each_row(|event| {
        match event {
            RowEvent::Valid { planned, .. } => {
                let project = planned.body.project_id.clone();
                offline.projects.entry(project).or_default().push(planned.row);
                if let Some(assignee) = &planned.assignee_email {
                    offline
                        .emails
                        .entry(assignee.email.clone())
                        .or_default()
                        .push(planned.row);
                }
                if let Some(refs) = &planned.test_case_refs {
                    let project = offline.cases.entry(planned.body.project_id.clone()).or_default();
                    for human_id in &refs.human_ids {
                        project.entry(human_id.clone()).or_default().push(planned.row);
                    }
                }
                offline.planned.push(planned.clone());
            }
            RowEvent::Invalid { problems, .. } => {
                offline.invalid += 1;
                for p in &problems {
                    printer.add(p, &problem);
                }
            }
        }
        Ok(())
    })?;
    printer.finish(&problem);
    stage.tell_column_problems(&problem);
    super::tell_date_notes(stage);
    Ok(offline)
}

/// Read-only calls: the key, each project, each e-mail assignee. Returns how many
/// problems the service found; a refused key or an unreadable answer is an error.
async fn check_at_service(client: &ApiClient, offline: &Offline, key_source: Option<&str>) -> anyhow::Result<usize> {
    let refused = |e: ApiError| -> anyhow::Error { SetupError::new(e.to_string()).into() };
    let mut problems = 0usize;
    // The key is checked by the first call; without projects, by GET /users.
    if offline.projects.is_empty() {
        client.users().await.map_err(refused)?;
    }
    for (project, used_by) in &offline.projects {
        if client.project_exists(project).await.map_err(refused)? {
            say(&format!("project {project}: found ({})", plural(used_by.len(), "row")));
        } else {
            problems += 1;
            problem(&format!(
                "invalid: project {project} does not exist or this key cannot see it ({})",
                list_rows(used_by)
            ));
        }
    }
    let source = key_source.map(|s| format!(" (from {s})")).unwrap_or_default();
    say(&format!("key: accepted by {}{source}", client.base_url()));
    problems += check_test_cases(client, offline).await.map_err(refused)?;
    if offline.emails.is_empty() {
        return Ok(problems);
    }
    let users = client.users().await.map_err(refused)?;
    for (email, used_by) in &offline.emails {
        match resolve_assignee(&users, email) {
            Ok(id) => say(&format!("assignee {email}: user {id}")),
            Err(message) => {
                problems += 1;
                problem(&format!(
                    "invalid: assignee `{email}` ({}): {message}",
                    list_rows(used_by)
                ));
            }
        }
    }
    Ok(problems)
}

/// Resolves every project's test case human ids and says what each is. Returns how many
/// the projects do not have.
async fn check_test_cases(client: &ApiClient, offline: &Offline) -> Result<usize, ApiError> {
    let mut problems = 0;
    for (project, cases) in &offline.cases {
        let human_ids: Vec<String> = cases.keys().cloned().collect();
        let lookup = client.find_test_cases(project, &human_ids).await?;
        say(&format!(
            "test cases in project {project}: {} human id(s) resolved in {}",
            human_ids.len(),
            plural(lookup.requests, "request")
        ));
        for (human_id, used_by) in cases {
            match lookup.id_of(human_id) {
                Some(id) => say(&format!("test case {human_id}: {id}")),
                None => {
                    problems += 1;
                    problem(&format!(
                        "invalid: test case `{human_id}` ({}): {}",
                        list_rows(used_by),
                        lookup.unknown(human_id)
                    ));
                }
            }
        }
    }
    Ok(problems)
}

/// `row 3`, `rows 3, 5`, `rows 3, 5, … 12 in all`.
fn list_rows(rows: &[usize]) -> String {
    let shown: Vec<String> = rows.iter().take(10).map(|r| r.to_string()).collect();
    let noun = if rows.len() == 1 { "row" } else { "rows" };
    if rows.len() > 10 {
        format!("{noun} {}, … {} in all", shown.join(", "), rows.len())
    } else {
        format!("{noun} {}", shown.join(", "))
    }
}

/// What the ledger and the service already hold of the rows, in one line: how many are
/// imported (and changed since), and how many an import would send.
async fn what_exists(
    client: &ApiClient,
    offline: &Offline,
    ledger: Option<&LedgerSnapshot>,
    rerun: &Rerun,
) -> anyhow::Result<(String, usize)> {
    let none = LedgerSnapshot::default();
    let (mut in_ledger, mut changed, mut unknown) = (0usize, 0usize, 0usize);
    let mut to_find: BTreeMap<&str, Vec<Wanted>> = BTreeMap::new();
    for p in &offline.planned {
        let here = scope(client.base_url(), &p.body.project_id);
        let key = row_key(&offline.key, p);
        match judge(ledger.unwrap_or(&none), rerun, p, &here, &key, &p.body.to_fields()).verdict {
            Verdict::AlreadyImported { changed: fields, .. } => {
                in_ledger += 1;
                changed += usize::from(!fields.is_empty());
            }
            Verdict::NoAnswer { .. } => unknown += 1,
            Verdict::Send { .. } | Verdict::Elsewhere { .. } => {
                let wanted = Wanted {
                    title: p.body.title.clone(),
                    start_date: p.body.start_date,
                    end_date: p.body.end_date,
                };
                to_find.entry(&p.body.project_id).or_default().push(wanted);
            }
        }
    }
    let (mut found, mut requests, mut to_send) = (0usize, 0usize, 0usize);
    for (project, wanted) in &to_find {
        let mut found_here = 0;
        requests += client
            .find_runs(project, wanted, &mut Default::default(), &mut |_, _| found_here += 1)
            .await?;
        found += found_here;
        to_send += wanted.len() - found_here;
    }
    let mut line = format!(
        "existing runs: {} already imported ({in_ledger} by the ledger, {found} found at the service in {})",
        in_ledger + found,
        plural(requests, "request")
    );
    if changed > 0 {
        line.push_str(&format!(", {changed} of them changed since"));
    }
    if unknown > 0 {
        line.push_str(&format!(", {unknown} sent before with no answer yet"));
    }
    line.push_str(&format!("; {to_send} would be sent"));
    Ok((line, to_send))
}
