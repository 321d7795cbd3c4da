//! `check`: everything `import` would check, plus read-only calls to the service: the
//! key is accepted, each project exists, each assignee e-mail resolves. Creates nothing.

use std::collections::BTreeMap;

use crate::cli::CheckArgs;
use crate::exit::{Exit, SetupError};
use crate::service::users::resolve_email;
use crate::service::{ApiClient, ApiError, connect};
use crate::settings::{load_config, resolve_read, resolve_service};
use crate::ui::problems::ProblemPrinter;
use crate::ui::{plural, problem, say, warn};
use crate::validate::stage::{ReadStage, RowEvent, open_read_stage};

pub async fn run_check(args: &CheckArgs) -> anyhow::Result<Exit> {
    let (config, config_path) = load_config(args.read.config.as_deref())?;
    let read = resolve_read(&args.read, &config)?;
    let service = resolve_service(&args.service, &config, config_path.as_deref())?;
    let mut stage = open_read_stage(&read, &warn)?;
    let offline = check_rows(&mut stage)?;
    if offline.rows == 0 {
        anyhow::bail!(SetupError::new(format!(
            "{}: no data rows below the header row; nothing to check",
            read.input.display_name()
        )));
    }
    say(&format!(
        "file: {}, {} valid, {} invalid",
        plural(offline.rows, "row"),
        offline.rows - offline.invalid,
        offline.invalid
    ));
    let (client, _sandbox) = connect(&service, false).await?;
    let service_problems = check_at_service(&client, &offline, service.key_source.as_deref()).await?;
    if offline.invalid + service_problems == 0 {
        say("check passed: nothing was created; `import` with the same options will send every row");
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
    if offline.emails.is_empty() {
        return Ok(problems);
    }
    let users = client.users().await.map_err(refused)?;
    for (email, used_by) in &offline.emails {
        match resolve_email(&users, email) {
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
