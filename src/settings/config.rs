//! The config file (`testsigma-import.toml`, or `--config`): read strictly for a run, and
//! leniently for the one thing a refused run still needs from it, `--summary-json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{DEFAULT_CONFIG, DEFAULT_STATE, SettingsError, flag, same_file};
use crate::cli::ImportArgs;

/// The config file: any option (by its long name, `-` or `_`), plus `[columns]` and `[defaults]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    pub project_id: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub sheet: Option<String>,
    pub header_row: Option<usize>,
    pub delimiter: Option<String>,
    pub encoding: Option<String>,
    pub timezone: Option<String>,
    pub date_order: Option<String>,
    pub list_separators: Option<String>,
    pub timestamp_unit: Option<String>,
    pub status: Option<String>,
    pub max_cell_bytes: Option<usize>,
    pub max_columns: Option<usize>,
    pub quiet: Option<bool>,
    pub allow_insecure: Option<bool>,
    pub ca_cert: Option<PathBuf>,
    pub timeout: Option<f64>,
    pub report: Option<PathBuf>,
    pub plan: Option<PathBuf>,
    pub rate: Option<f64>,
    pub concurrency: Option<usize>,
    pub max_retries: Option<u32>,
    pub state: Option<PathBuf>,
    pub moved_from: Option<String>,
    pub summary_json: Option<PathBuf>,
    pub skip_invalid: Option<bool>,
    pub key: Option<String>,
    pub no_lookup: Option<bool>,
    pub update_changed: Option<bool>,
    pub mapping: Option<PathBuf>,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    #[serde(default)]
    pub defaults: BTreeMap<String, toml::Value>,
    /// `[values.status]`: words that mean a status.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

/// A mapping file: `[columns]` and `[defaults]` only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MappingFile {
    #[serde(default)]
    pub(super) columns: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) defaults: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub(super) values: BTreeMap<String, BTreeMap<String, String>>,
}

/// Reads the config file named by `--config`, or `testsigma-import.toml` here if present.
pub fn load_config(explicit: Option<&Path>) -> Result<(ConfigFile, Option<PathBuf>), SettingsError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let default = PathBuf::from(DEFAULT_CONFIG);
            if !default.exists() {
                return Ok((ConfigFile::default(), None));
            }
            default
        }
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if explicit.is_some() {
            flag("--config", format!("cannot read {shown}: {e}"))
        } else {
            SettingsError::Config {
                path: shown.clone(),
                message: e.to_string(),
            }
        }
    })?;
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| SettingsError::Config {
        path: shown.clone(),
        message: toml_error(&text, &e),
    })?;
    // Keys may be spelled like the flags (`project-id`) or like the fields (`project_id`).
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        if key != "columns"
            && key != "defaults"
            && key != "values"
            && key.contains('_')
            && let Some(value) = table.remove(&key)
        {
            table.insert(key.replace('_', "-"), value);
        }
    }
    // What one run means, never every run's default: a config that always forced, always
    // rehearsed or never sent would do it silently, night after night.
    for (key, why) in [
        ("force", "it would send every row again on every run"),
        (
            "no-state",
            "no run would keep a ledger, so every run would send every row again",
        ),
        (
            "retry-unknown",
            "every run would resend the rows whose runs may already exist",
        ),
        ("dry-run", "every run would send nothing, and still exit 0"),
        ("sandbox", "every run would go to a throw-away sandbox, not the service"),
    ] {
        if table.contains_key(key) {
            return Err(SettingsError::Config {
                path: shown.clone(),
                message: format!("`{key}` is a flag only, for one run (--{key}): in a config file {why}; remove it"),
            });
        }
    }
    let secret = table
        .get("api-key")
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    let config: ConfigFile = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
        // A wrongly typed `api-key = 12345` would be quoted back: never show it.
        let message = match &secret {
            Some(secret) if !secret.is_empty() => e.message().replace(secret.as_str(), "***"),
            _ => e.message().to_string(),
        };
        SettingsError::Config {
            path: shown.clone(),
            message,
        }
    })?;
    if config.api_key.is_some() {
        check_private(&path)?;
    }
    Ok((config, Some(path)))
}

/// A TOML syntax error with its line number but without the line itself, which may
/// hold the API key.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
            format!("line {line}: {}", e.message().trim())
        }
        None => e.message().trim().to_string(),
    }
}

/// A key in a config file is only accepted when no one else can read the file.
fn check_private(path: &Path) -> Result<(), SettingsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| SettingsError::Config {
                path: path.display().to_string(),
                message: e.to_string(),
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(SettingsError::Config {
                path: path.display().to_string(),
                message: format!(
                    "it holds api-key but other users can read it (mode {:o}); run `chmod 600 {}` or move the key to TESTSIGMA_API_KEY or --api-key-file",
                    mode & 0o777,
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

/// Where `--summary-json` (or the config's `summary-json`) asks the summary to go, as far as
/// it can be told when the settings themselves are wrong.
/// Never a file the run reads or keeps (the input, the config, the ledger), whatever it says.
pub fn summary_path(args: &ImportArgs) -> Option<PathBuf> {
    // The config may be what was refused (a value of the wrong type): read it leniently.
    let config_path = args
        .read
        .config
        .clone()
        .or_else(|| Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()));
    let table: Option<toml::Table> = config_path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| text.parse().unwrap_or_else(|_| top_lines(&text)));
    let in_config = |key: &str| {
        table
            .as_ref()
            .and_then(|t| t.get(key))
            .and_then(toml::Value::as_str)
            .map(PathBuf::from)
    };
    let path = args.summary_json.clone().or_else(|| in_config("summary-json"))?;
    let state = args.state.clone().or_else(|| in_config("state"));
    let kept = [Some(PathBuf::from(&args.read.file)), config_path, state];
    (!kept.iter().flatten().any(|other| same_file(other, &path))).then_some(path)
}

/// The top-level settings of a config file that is not valid TOML, each line read on its
/// own, so that a nightly run whose config was broken still writes its failure where the
/// config's `summary-json` says. Lines that do not read alone are left out; reading stops at
/// the first table header, past which no key is top-level.
fn top_lines(text: &str) -> toml::Table {
    let mut table = toml::Table::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            break;
        }
        if let Ok(setting) = line.parse::<toml::Table>() {
            table.extend(setting);
        }
    }
    table
}

/// Where `--summary-json` asks the summary of an `import` whose command line the argument
/// parser refused (`--rate abc`) to go, read from the raw arguments, since they could not
/// be parsed: a monitor must not read the last run's success. `None` when not given, or
/// when the path is also another argument or a default file (the input, config or ledger).
pub fn summary_path_of_refused_args(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let words: Vec<&str> = args.iter().skip(1).map(|a| a.to_str().unwrap_or("")).collect();
    // The subcommand is the first word that is neither a flag nor a global flag's value.
    let mut rest = words.iter().enumerate();
    let subcommand = loop {
        let (i, word) = rest.next()?;
        if !word.starts_with('-') && (i == 0 || !["--log-format", "--timestamps"].contains(&words[i - 1])) {
            break *word;
        }
    };
    if subcommand != "import" {
        return None;
    }
    // The path, and the places of the words that give it.
    let (path, given_at) =
        words
            .iter()
            .enumerate()
            .find_map(|(i, word)| match word.strip_prefix("--summary-json") {
                Some("") => words.get(i + 1).map(|v| (*v, [i, i + 1])),
                Some(rest) => rest.strip_prefix('=').map(|v| (v, [i, i])),
                None => None,
            })?;
    if path.is_empty() || path.starts_with('-') {
        return None;
    }
    let path = PathBuf::from(path);
    // Every other word is a path the run may read or keep, and so is the value of any
    // `--flag=value`; so are the default config and ledger, and the ledger's lock.
    let others = words
        .iter()
        .enumerate()
        .filter(|(i, _)| !given_at.contains(i))
        .flat_map(|(_, word)| [Some(*word), word.split_once('=').map(|(_, value)| value)])
        .flatten()
        .map(PathBuf::from)
        .chain([DEFAULT_CONFIG, DEFAULT_STATE].map(PathBuf::from))
        .chain([crate::ledger::lock_path(Path::new(DEFAULT_STATE))]);
    for other in others {
        if same_file(&other, &path) {
            return None;
        }
    }
    // Whatever else it names (the default report, a lock, a file of the user's) is
    // written over only when it is a summary already.
    let is_summary =
        |text: &str| serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.get("exit_code").is_some());
    match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(path),
        Ok(text) if is_summary(&text) => Some(path),
        _ => None,
    }
}
