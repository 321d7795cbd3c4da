//! Assignees given as e-mail addresses, resolved to user ids with one `GET /users`
//! before the first create.

use std::collections::HashSet;

use super::UploadRun;
use crate::exit::SetupError;
use crate::request::PlannedRow;
use crate::service::ApiClient;
use crate::service::users::resolve_email;
use crate::validate::stage::row_error;

/// Whether a row to send has an e-mail assignee, so `GET /users` is needed: not for the
/// rows the ledger shows this run skips (`skipped`).
pub(crate) fn needs_users(planned: &[(usize, PlannedRow, Vec<String>)], skipped: &HashSet<usize>) -> bool {
    planned
        .iter()
        .any(|(index, p, _)| p.assignee_email.is_some() && !skipped.contains(index))
}

/// Assignees given as e-mail addresses → user ids, with one `GET /users` before the first
/// POST (paced and retried like a create), made only when a row to send needs it. The rows the ledger skips (`skipped`) are
/// resolved too when it is made, which tells whether they have changed since; an address
/// no user has any more is no problem there, since nothing is sent for them.
pub(crate) async fn resolve_assignees(
    run: &mut UploadRun,
    client: &ApiClient,
    skipped: &HashSet<usize>,
) -> anyhow::Result<()> {
    if !needs_users(&run.planned, skipped) {
        return Ok(());
    }
    let users = client
        .users()
        .await
        .map_err(|e| SetupError::new(format!("could not resolve assignee e-mail addresses: {e}")))?;
    let mut unknown = Vec::new();
    for (index, p, _) in run.planned.iter_mut() {
        let Some(assignee) = p.assignee_email.take() else {
            continue;
        };
        match resolve_email(&users, &assignee.email) {
            Ok(id) => p.body.assignee_id = Some(id),
            Err(_) if skipped.contains(index) => p.assignee_email = Some(assignee),
            Err(message) => unknown.push((*index, assignee.problem(p.row, message))),
        }
    }
    for (index, problem) in unknown {
        run.problems.add(&problem, &crate::ui::problem);
        run.invalidate(index, row_error(std::slice::from_ref(&problem)));
    }
    Ok(())
}
