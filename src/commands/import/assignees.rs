//! Assignees given as e-mail addresses, resolved to user ids with one `GET /users`
//! before the first create.

use std::collections::HashSet;

use super::UploadRun;
use crate::exit::SetupError;
use crate::request::PlannedRow;
use crate::service::ApiClient;
use crate::service::users::resolve_assignee;
use crate::validate::stage::row_error;

/// Whether a row has an e-mail assignee, so `GET /users` is needed. Every such row is
/// resolved, those the ledger shows as imported too: their requests are compared with
/// what was sent, and an unresolved address would hide a change, or fake one.
pub(crate) fn needs_users(planned: &[(usize, PlannedRow, Vec<String>)]) -> bool {
    planned.iter().any(|(_, p, _)| p.assignee_email.is_some())
}

/// Assignees given as e-mail addresses → user ids, with one `GET /users` before the first
/// POST (paced and retried like a create). An address no user has any more is no problem
/// for a row the ledger shows this run will not send (`skipped`).
pub(crate) async fn resolve_assignees(
    run: &mut UploadRun,
    client: &ApiClient,
    skipped: &HashSet<usize>,
) -> anyhow::Result<()> {
    if !needs_users(&run.planned) {
        return Ok(());
    }
    let users = client.users().await;
    let users = match users {
        Ok(users) => users,
        // Only rows the ledger shows as imported have addresses: they are not sent, so the
        // run goes on, but it cannot tell whether their assignees changed, and says so.
        Err(e)
            if run
                .planned
                .iter()
                .all(|(i, p, _)| p.assignee_email.is_none() || skipped.contains(i)) =>
        {
            crate::ui::warn(&format!(
                "could not resolve assignee e-mail addresses ({e}); rows already imported are not checked for a changed assignee"
            ));
            return Ok(());
        }
        Err(e) => return Err(SetupError::new(format!("could not resolve assignee e-mail addresses: {e}")).into()),
    };
    let mut unknown = Vec::new();
    for (index, p, _) in run.planned.iter_mut() {
        let Some(assignee) = p.assignee_email.take() else {
            continue;
        };
        match resolve_assignee(&users, &assignee.email) {
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
