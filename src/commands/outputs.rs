//! The files a run writes, checked before anything is read or sent: none may be a file
//! the run reads or another output, and `--summary-json` must be writable.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::exit::SetupError;
use crate::report::failed_rows_path_beside;
use crate::settings::ImportSettings;

/// No file the run writes may be the input it reads (a report named like the input
/// would destroy it). Returns the failed-rows file's path.
pub(crate) fn check_outputs(settings: &ImportSettings) -> anyhow::Result<Option<PathBuf>> {
    let failed = failed_rows_path_beside(&settings.report);
    let mut outputs: Vec<(&str, &Path)> = vec![("--report", &settings.report)];
    outputs.extend(
        failed
            .as_deref()
            .map(|p| ("the failed-rows file (named after --report)", p)),
    );
    outputs.extend(
        settings
            .plan
            .as_deref()
            .filter(|p| *p != Path::new("-"))
            .map(|p| ("--plan", p)),
    );
    outputs.extend(settings.state.as_deref().map(|p| ("--state", p)));
    outputs.extend(settings.summary_json.as_deref().map(|p| ("--summary-json", p)));
    // Files the run reads: writing an output over one would destroy it.
    let mut read: Vec<(&str, &Path)> = Vec::new();
    if let crate::read::Input::File(input) = &settings.read.input {
        read.push(("the input file", input));
    }
    read.extend(settings.config_path.as_deref().map(|p| ("the config file", p)));
    for (i, (name, path)) in outputs.iter().enumerate() {
        // A device (`/dev/null`) may take several outputs; a file holds one.
        if crate::report::is_special_file(path) {
            continue;
        }
        let mut earlier = read
            .iter()
            .map(|(what, p)| ((*what).to_owned(), *p))
            .chain(outputs[..i].iter().map(|(what, p)| (format!("also {what}"), *p)));
        if let Some((other, _)) = earlier.find(|(_, other)| crate::settings::same_file(other, path)) {
            bail!(SetupError::new(format!(
                "{name} {} is {other}, which the run would overwrite; choose another name",
                path.display(),
            )));
        }
    }
    if let Some(path) = &settings.summary_json {
        check_writable(path)
            .map_err(|e| SetupError::new(format!("--summary-json: cannot write {}: {e}", path.display())))?;
    }
    Ok(failed)
}

/// Whether `path` can be written, found out before anything is sent rather than after:
/// the summary is written last. Leaves no file behind that was not there.
fn check_writable(path: &Path) -> std::io::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new().append(true).create(true).open(path)?;
    if !existed {
        std::fs::remove_file(path)?;
    }
    Ok(())
}
