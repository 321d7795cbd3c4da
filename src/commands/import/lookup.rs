//! Before anything is sent: which rows' runs already exist at the service. A row the
//! ledger does not show as created, or whose answer never came, is looked up in its
//! project by title, start and end date; a run found is the row's run.

use std::collections::HashMap;

use super::UploadRun;
use crate::exit::SetupError;
use crate::ledger::keys::{field_hashes_as_found, fields_changed_since};
use crate::ledger::policy::{Rerun, ToSend, changed_message};
use crate::ledger::{CreatedRun, Ledger, body_hash, idempotency_key};
use crate::report::Outcome;
use crate::service::ApiClient;
use crate::service::runs::{RemoteRun, Wanted};

impl UploadRun {
    /// Looks up the rows marked for it; returns the rows still to send. A lookup whose
    /// answer cannot be read stops the run before anything is sent.
    pub(super) async fn look_up(
        &mut self,
        client: &ApiClient,
        to_send: Vec<ToSend>,
        mut ledger: Option<&mut Ledger>,
        rerun: &Rerun,
    ) -> anyhow::Result<Vec<ToSend>> {
        let (look, mut send): (Vec<ToSend>, Vec<ToSend>) = to_send.into_iter().partition(|t| t.look_up);
        for (project, rows) in by_project(self, look) {
            let wanted: Vec<Wanted> = rows.iter().map(|t| self.wanted(t.index)).collect();
            let found = client.find_runs(&project, &wanted).await.map_err(|e| {
                SetupError::new(format!(
                    "could not look up which runs project {project} already holds, so nothing was sent: {e}"
                ))
                .because(super::summary::cause_of_answer(&e))
            })?;
            self.lookups += found.requests;
            for (row, run) in rows.into_iter().zip(found.runs) {
                match run {
                    None => send.push(ToSend { look_up: false, ..row }),
                    Some(run) => send.extend(self.found(row, &run, ledger.as_deref_mut(), rerun)?),
                }
            }
        }
        send.sort_by_key(|t| t.index);
        Ok(send)
    }

    /// What the row's run must hold to be its run.
    fn wanted(&self, index: usize) -> Wanted {
        let body = &self.planned_row(index).body;
        Wanted {
            title: body.title.clone(),
            start_date: body.start_date,
            end_date: body.end_date,
        }
    }

    /// The row's run exists: `already_imported`, or `changed` naming the fields (to update
    /// with `--update-changed`). The ledger records it, so the next run need not ask.
    fn found(
        &mut self,
        row: ToSend,
        run: &RemoteRun,
        ledger: Option<&mut Ledger>,
        rerun: &Rerun,
    ) -> anyhow::Result<Option<ToSend>> {
        let p = self.planned_row(row.index);
        let ours = p.body.to_fields();
        let held = field_hashes_as_found(&ours, &run.fields);
        let changed = fields_changed_since(&ours, &held);
        let sent = changed.is_empty().then(|| body_hash(&row.body));
        if let Some(ledger) = ledger {
            let (scope, key) = &row.ledger_key;
            let created = CreatedRun {
                test_run_id: Some(&run.id),
                test_run_human_id: run.human_id.as_deref(),
                body: sent.as_deref(),
                fields: Some(&held),
            };
            ledger.record_created(scope, key, p.row, &created)?;
        }
        self.found_at_service += 1;
        let name = run.human_id.as_deref().unwrap_or(&run.id);
        let report = &mut self.rows[row.index];
        report.test_run_id = Some(run.id.clone());
        report.test_run_human_id = run.human_id.clone();
        report.outcome = Outcome::AlreadyImported;
        if changed.is_empty() {
            return Ok(None);
        }
        report.outcome = Outcome::Changed;
        report.error = Some(changed_message(
            &changed,
            &format!("found at the service as {name}"),
            rerun,
        ));
        let (scope, key) = &row.ledger_key;
        let update = ToSend {
            idempotency_key: idempotency_key(scope, &format!("{key}#update@{}", run.id)),
            look_up: false,
            update_of: Some(run.id.clone()),
            ..row
        };
        Ok(rerun.update_changed.then_some(update))
    }
}

/// The rows to look up, by project, in the order each project first comes.
fn by_project(run: &UploadRun, rows: Vec<ToSend>) -> Vec<(String, Vec<ToSend>)> {
    let mut order: Vec<(String, Vec<ToSend>)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let project = run.planned_row(row.index).body.project_id.clone();
        let slot = *at.entry(project.clone()).or_insert_with(|| {
            order.push((project, Vec::new()));
            order.len() - 1
        });
        order[slot].1.push(row);
    }
    order
}
