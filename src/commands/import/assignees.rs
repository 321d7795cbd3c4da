//! Assignees given as e-mail addresses, resolved to user ids with one `GET /users`
//! before the first create.

use std::collections::HashSet;

use super::UploadRun;
use crate::exit::SetupError;
use crate::service::ApiClient;
use crate::service::users::resolve_assignee;
use crate::validate::stage::row_error;

/// Assignees given as e-mail addresses → user ids, with one `GET /users` before the first
/// POST (paced and retried like a create). Every row with one is resolved, those the
/// ledger shows as imported too: their requests are compared with what was sent, and an
/// unresolved address would hide a change, or fake one. An address no user has any more
/// is no problem for a row the ledger shows this run will not send (`skipped`).
pub(crate) async fn resolve_assignees(
    run: &mut UploadRun,
    client: &ApiClient,
    skipped: &HashSet<usize>,
) -> anyhow::Result<()> {
    if !run.any_planned(|p| p.assignee_email.is_some())? {
        return Ok(());
    }
    let users = match client.users().await {
        Ok(users) => users,
        Err(e) => {
            // Only rows the ledger shows as imported have addresses: they are not sent, so
            // the run goes on, but it cannot tell whether their assignees changed, and says so.
            let mut all_skipped = true;
            run.rows().for_each_planned(|index, r| {
                let email = r.planned.as_ref().is_some_and(|p| p.assignee_email.is_some());
                all_skipped &= !email || skipped.contains(&index);
                Ok(false)
            })?;
            if all_skipped {
                crate::ui::warn(&format!(
                    "could not resolve assignee e-mail addresses ({e}); rows already imported are not checked for a changed assignee"
                ));
                return Ok(());
            }
            return Err(SetupError::new(format!("could not resolve assignee e-mail addresses: {e}")).into());
        }
    };
    let mut unknown = Vec::new();
    run.rows().for_each_planned(|index, r| {
        let Some(p) = r.planned.as_mut() else { return Ok(false) };
        let Some(assignee) = p.assignee_email.take() else {
            return Ok(false);
        };
        match resolve_assignee(&users, &assignee.email) {
            Ok(id) => p.body.assignee_id = Some(id),
            Err(_) if skipped.contains(&index) => p.assignee_email = Some(assignee),
            Err(message) => unknown.push((index, assignee.problem(p.row, message))),
        }
        Ok(true)
    })?;
    for (index, problem) in unknown {
        run.problems.add(&problem, &crate::ui::problem);
        run.invalidate(index, row_error(std::slice::from_ref(&problem)))?;
    }
    Ok(())
}
