//! `check`: everything `import` would check, plus read-only calls to the service: the
//! key is accepted, each project exists, each assignee e-mail resolves. Creates nothing.

use std::collections::BTreeMap;

use crate::cli::CheckArgs;
use crate::exit::{Exit, SetupError};
use crate::service::users::resolve_email;
use crate::service::{ApiError, connect};
use crate::settings::{load_config, resolve_read, resolve_service};
use crate::ui::problems::ProblemPrinter;
use crate::ui::{plural, problem, say, warn};
use crate::validate::stage::{RowEvent, open_read_stage};

pub async fn run_check(args: &CheckArgs) -> anyhow::Result<Exit> {
    let (config, config_path) = load_config(args.read.config.as_deref())?;
    let read = resolve_read(&args.read, &config)?;
    let service = resolve_service(&args.service, &config, config_path.as_deref())?;
    let mut stage = open_read_stage(&read, &warn)?;
    stage.tell_column_problems(&problem);

    let mut printer = ProblemPrinter::new(50);
    let mut invalid = 0usize;
    // project → rows using it; e-mail → rows using it.
    let mut projects: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut emails: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let rows = stage.for_each_row(|event| {
        match event {
            RowEvent::Valid { planned, .. } => {
                projects
                    .entry(planned.body.project_id.clone())
                    .or_default()
                    .push(planned.row);
                if let Some(assignee) = &planned.assignee_email {
                    emails.entry(assignee.email.clone()).or_default().push(planned.row);
                }
            }
            RowEvent::Invalid { problems, .. } => {
                invalid += 1;
                for p in &problems {
                    printer.add(p, &problem);
                }
            }
        }
        Ok(())
    })?;
    printer.finish(&problem);
    stage.tell_column_problems(&problem);
    if rows == 0 {
        anyhow::bail!(SetupError::new(format!(
            "{}: no data rows below the header row; nothing to check",
            read.input.display_name()
        )));
    }
    say(&format!(
        "file: {}, {} valid, {invalid} invalid",
        plural(rows, "row"),
        rows - invalid
    ));

    let (client, _sandbox) = connect(&service, false).await?;
    let refused = |e: ApiError| -> anyhow::Error {
        match e {
            ApiError::KeyRefused { .. } | ApiError::Redirected(_) => SetupError::new(e.to_string()).into(),
            other => SetupError::new(other.to_string()).into(),
        }
    };
    let mut service_problems = 0usize;
    // The key is checked by the first call; without projects, by GET /users.
    if projects.is_empty() {
        client.users().await.map_err(refused)?;
    }
    for (project, used_by) in &projects {
        if client.project_exists(project).await.map_err(refused)? {
            say(&format!("project {project}: found ({})", plural(used_by.len(), "row")));
        } else {
            service_problems += 1;
            say(&format!(
                "invalid: project {project} does not exist or this key cannot see it ({})",
                list_rows(used_by)
            ));
        }
    }
    say(&format!(
        "key: accepted by {}{}",
        client.base_url(),
        service
            .key_source
            .as_deref()
            .map(|s| format!(" (from {s})"))
            .unwrap_or_default()
    ));
    if !emails.is_empty() {
        let users = client.users().await.map_err(refused)?;
        for (email, used_by) in &emails {
            match resolve_email(&users, email) {
                Ok(id) => say(&format!("assignee {email}: user {id}")),
                Err(message) => {
                    service_problems += 1;
                    say(&format!(
                        "invalid: assignee `{email}` ({}): {message}",
                        list_rows(used_by)
                    ));
                }
            }
        }
    }
    if invalid + service_problems == 0 {
        say("check passed: nothing was created; `import` with the same options will send every row");
        Ok(Exit::Ok)
    } else {
        say(&format!(
            "check failed: {} invalid, {} found by the service (exit 3)",
            plural(invalid, "row"),
            plural(service_problems, "problem")
        ));
        Ok(Exit::Invalid)
    }
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
