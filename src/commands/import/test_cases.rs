//! Test cases given by human id (`TC-12`), resolved to their ids before the first create:
//! once per distinct id and project, in the fewest requests (see
//! [`crate::service::test_cases`]), and held for the run.

use std::collections::{BTreeMap, HashSet};

use super::UploadRun;
use crate::exit::SetupError;
use crate::request::PlannedRow;
use crate::service::ApiClient;
use crate::service::test_cases::CaseLookup;
use crate::validate::{Problem, ProblemKind, stage::row_error};

/// Adds the row's human ids to each project's distinct human ids, kept in the order rows
/// first give them.
fn add_human_ids(wanted: &mut BTreeMap<String, (Vec<String>, HashSet<String>)>, p: &PlannedRow) {
    let Some(refs) = &p.test_case_refs else { return };
    let (ids, seen) = wanted.entry(p.body.project_id.clone()).or_default();
    for human_id in &refs.human_ids {
        if seen.insert(human_id.clone()) {
            ids.push(human_id.clone());
        }
    }
}

/// Looks up every project's human ids. Returns each project's lookup and the requests spent.
pub(crate) async fn look_up(
    client: &ApiClient,
    wanted: &BTreeMap<String, Vec<String>>,
) -> Result<(BTreeMap<String, CaseLookup>, usize), crate::service::ApiError> {
    let (mut lookups, mut requests) = (BTreeMap::new(), 0);
    for (project, human_ids) in wanted {
        let lookup = client.find_test_cases(project, human_ids).await?;
        requests += lookup.requests;
        lookups.insert(project.clone(), lookup);
    }
    Ok((lookups, requests))
}

/// The problem for a row whose project has no test case `human_id`.
pub(crate) fn unknown_case(p: &PlannedRow, lookup: &CaseLookup, human_id: &str) -> Problem {
    let refs = p.test_case_refs.as_ref();
    Problem {
        row: p.row,
        column: refs.and_then(|r| r.column.clone()),
        cell: refs.and_then(|r| r.cell.clone()),
        value: Some(human_id.to_owned()),
        kind: ProblemKind::NotUuid,
        message: lookup.unknown(human_id),
    }
}

/// Human ids → ids in every row's request before the first POST. A row whose project has
/// no such case is invalid, unless the ledger shows this run will not send it (`skipped`).
pub(crate) async fn resolve_test_cases(
    run: &mut UploadRun,
    client: &ApiClient,
    skipped: &HashSet<usize>,
) -> anyhow::Result<()> {
    let mut wanted = BTreeMap::new();
    run.rows().for_each_planned(|_, r| {
        if let Some(p) = &r.planned {
            add_human_ids(&mut wanted, p);
        }
        Ok(false)
    })?;
    let wanted: BTreeMap<String, Vec<String>> = wanted.into_iter().map(|(project, (ids, _))| (project, ids)).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let (lookups, requests) = look_up(client, &wanted)
        .await
        .map_err(|e| SetupError::new(format!("could not resolve test case human ids: {e}")))?;
    let count: usize = wanted.values().map(Vec::len).sum();
    tracing::info!(human_ids = count, requests, "test case human ids resolved");
    let mut unknown: Vec<(usize, Vec<Problem>)> = Vec::new();
    run.rows().for_each_planned(|index, r| {
        let Some(p) = r.planned.as_mut() else { return Ok(false) };
        let (Some(refs), Some(lookup)) = (&p.test_case_refs, lookups.get(&p.body.project_id)) else {
            return Ok(false);
        };
        let problems: Vec<Problem> = refs
            .human_ids
            .iter()
            .filter(|h| lookup.id_of(h).is_none())
            .map(|h| unknown_case(p, lookup, h))
            .collect();
        if problems.is_empty() {
            p.resolve_test_cases(|value| lookup.id_of(value).map(str::to_owned));
            return Ok(true);
        }
        if !skipped.contains(&index) {
            unknown.push((index, problems));
        }
        Ok(false)
    })?;
    for (index, problems) in unknown {
        for problem in &problems {
            run.problems.add(problem, &crate::ui::problem);
        }
        run.invalidate(index, row_error(&problems))?;
    }
    Ok(())
}
