//! Before anything is sent: which rows' runs already exist at the service. A row the
//! ledger does not show as created, or whose answer never came, is looked up in its
//! project by title, start and end date; a run found is the row's run.

use std::collections::HashMap;

use super::UploadRun;
use crate::exit::SetupError;
use crate::ledger::keys::{field_hashes_as_found, fields_changed_since};
use crate::ledger::policy::{Again, Rerun, ToSend, changed_message};
use crate::ledger::{CreatedRun, Ledger, body_hash};
use crate::report::Outcome;
use crate::request::PlannedRow;
use crate::service::ApiClient;
use crate::service::runs::{Claimed, RemoteRun, Wanted};

/// The rows of one project looked up at a time: what they are looked up by is held for
/// these only. Each part reads the project's list again (while it has fewer pages than
/// the part has titles), so parts are large: 200,000 rows hold about 30 MB.
const ROWS_AT_A_TIME: usize = 200_000;

impl UploadRun {
    /// Looks up the rows marked for it; returns the rows still to send. A lookup whose
    /// answer cannot be read stops the run before anything is sent. `base` is the
    /// ledger's base URL, for each row's place in it.
    pub(super) async fn look_up(
        &mut self,
        client: &ApiClient,
        to_send: Vec<ToSend>,
        mut ledger: Option<&mut Ledger>,
        (rerun, base): (&Rerun, &str),
    ) -> anyhow::Result<Vec<ToSend>> {
        let (look, mut send): (Vec<ToSend>, Vec<ToSend>) = to_send.into_iter().partition(|t| t.look_up);
        for (project, rows) in self.by_project(look)? {
            let mut claimed = Claimed::default();
            for part in rows.chunks(ROWS_AT_A_TIME) {
                let wanted = part
                    .iter()
                    .map(|t| self.wanted(t.index))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let mut found_rows = vec![false; part.len()];
                let mut failed: Option<anyhow::Error> = None;
                let mut found = |at: usize, run: RemoteRun| {
                    found_rows[at] = true;
                    match self.found(part[at].index, &run, ledger.as_deref_mut(), (rerun, base)) {
                        Ok(update) => send.extend(update),
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
                    }
                };
                let requests = client.find_runs(&project, &wanted, &mut claimed, &mut found).await;
                let requests = requests.map_err(|e| {
                    SetupError::new(format!(
                        "could not look up which runs project {project} already holds, so nothing was sent: {e}"
                    ))
                    .because(super::summary::cause_of_answer(&e))
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
                self.lookups += requests;
                let unfound = part.iter().zip(found_rows).filter(|(_, found)| !found);
                send.extend(unfound.map(|(t, _)| ToSend {
                    index: t.index,
                    look_up: false,
                    again: None,
                }));
            }
        }
        send.sort_by_key(|t| t.index);
        Ok(send)
    }

    /// What the row's run must hold to be its run.
    fn wanted(&self, index: usize) -> anyhow::Result<Wanted> {
        let body = self.planned_row(index)?.body;
        Ok(Wanted {
            title: body.title,
            start_date: body.start_date,
            end_date: body.end_date,
        })
    }

    /// The row's run exists: `already_imported`, or `changed` naming the fields (to update
    /// with `--update-changed`). The ledger records it, so the next run need not ask.
    fn found(
        &mut self,
        index: usize,
        run: &RemoteRun,
        ledger: Option<&mut Ledger>,
        (rerun, base): (&Rerun, &str),
    ) -> anyhow::Result<Option<ToSend>> {
        let p: PlannedRow = self.planned_row(index)?;
        // A row looked up is sent, if at all, with its first keys.
        let row = ToSend {
            index,
            look_up: false,
            again: None,
        };
        let ours = p.body.to_fields();
        let held = field_hashes_as_found(&ours, &run.fields);
        let changed = fields_changed_since(&ours, &held);
        let sent = changed.is_empty().then(|| body_hash(&p.body.to_json()));
        if let Some(ledger) = ledger {
            let ((scope, key), _) = row.keys(&p, base, &self.key);
            let created = CreatedRun {
                test_run_id: Some(&run.id),
                test_run_human_id: run.human_id.as_deref(),
                body: sent.as_deref(),
                fields: Some(&held),
            };
            ledger.record_created(&scope, &key, p.row, &created)?;
        }
        self.found_at_service += 1;
        let name = run.human_id.as_deref().unwrap_or(&run.id);
        let message =
            (!changed.is_empty()).then(|| changed_message(&changed, &format!("found at the service as {name}"), rerun));
        self.rows().update(index, |record| {
            let report = &mut record.report;
            report.test_run_id = Some(run.id.clone());
            report.test_run_human_id = run.human_id.clone();
            report.outcome = if message.is_some() {
                Outcome::Changed
            } else {
                Outcome::AlreadyImported
            };
            report.error = message.or(report.error.take());
            (true, ())
        })?;
        if changed.is_empty() || !rerun.update_changed {
            return Ok(None);
        }
        let again = Again {
            key_suffix: format!("#update@{}", run.id),
            update_of: Some(run.id.clone()),
        };
        Ok(Some(ToSend {
            again: Some(Box::new(again)),
            ..row
        }))
    }

    /// The rows to look up, by project, in the order each project first comes.
    fn by_project(&self, rows: Vec<ToSend>) -> anyhow::Result<Vec<(String, Vec<ToSend>)>> {
        let mut order: Vec<(String, Vec<ToSend>)> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        for row in rows {
            let project = self.planned_row(row.index)?.body.project_id;
            let slot = *at.entry(project.clone()).or_insert_with(|| {
                order.push((project, Vec::new()));
                order.len() - 1
            });
            order[slot].1.push(row);
        }
        Ok(order)
    }
}
