//! Turns flags, environment and the config file into one resolved set of settings:
//! flags > environment > config file > defaults. Every error names the flag or key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;

use crate::cli::{ImportArgs, ReadArgs};
use crate::ledger::KeySpec;
use crate::ledger::policy::Rerun;
use crate::read::mapping::{ExplicitColumn, Field, parse_column_spec};
use crate::read::{Input, SourceOptions};
use crate::service::ServiceSettings;
use crate::validate::RowRules;
use crate::validate::dates::{DateOrder, TimestampUnit};
use crate::validate::stage::ReadSettings;

mod config;
mod service;

use config::MappingFile;
pub use config::{ConfigFile, load_config, summary_path, summary_path_of_refused_args};
pub use service::resolve_service;

pub const DEFAULT_CONFIG: &str = "testsigma-import.toml";
pub const DEFAULT_STATE: &str = "testsigma-import.state.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{flag}: {message}")]
    Flag { flag: String, message: String },
    #[error("config file {path}: {message}")]
    Config { path: String, message: String },
    #[error(transparent)]
    Mapping(#[from] crate::read::mapping::MappingError),
}

fn flag(flag: &str, message: impl Into<String>) -> SettingsError {
    SettingsError::Flag {
        flag: flag.to_string(),
        message: message.into(),
    }
}

/// Where a value that a flag or the config file may give came from, for its message: the
/// flag, or the config file's key, which is where it must be fixed.
fn given(flag_name: &str, by_flag: bool) -> String {
    if by_flag {
        flag_name.to_string()
    } else {
        format!("`{}` in the config file", flag_name.trim_start_matches("--"))
    }
}

#[derive(Debug, Clone)]
pub struct ImportSettings {
    pub read: ReadSettings,
    pub service: ServiceSettings,
    pub dry_run: bool,
    pub plan: Option<PathBuf>,
    pub report: PathBuf,
    pub rate: f64,
    pub concurrency: usize,
    pub max_retries: u32,
    pub state: Option<PathBuf>,
    pub force: bool,
    pub retry_unknown: bool,
    /// Ask the service which runs exist before sending (not `--no-lookup`).
    pub lookup: bool,
    /// `--update-changed`.
    pub update_changed: bool,
    /// `--moved-from`: the base URL the service had when the ledger's earlier rows were made.
    pub moved_from: Option<String>,
    pub summary_json: Option<PathBuf>,
    pub skip_invalid: bool,
    /// The config file read, if any: no output may be written over it.
    pub config_path: Option<PathBuf>,
}

impl ImportSettings {
    /// What a re-run may do with the rows the ledger knows.
    pub fn rerun(&self) -> Rerun {
        Rerun {
            force: self.force,
            retry_unknown: self.retry_unknown,
            sandbox: self.service.sandbox,
            moved_from: self.moved_from.clone(),
            lookup: self.lookup,
            update_changed: self.update_changed,
            settle_after: self.service.timeout,
        }
    }
}

pub fn resolve_read(args: &ReadArgs, config: &ConfigFile) -> Result<ReadSettings, SettingsError> {
    let input = Input::from_arg(&args.file).map_err(|e| flag("<FILE>", e.to_string()))?;
    let mut source = resolve_source(args, config)?;
    let list_separators = resolve_list_separators(args, config)?;
    let (columns, defaults) = resolve_columns(args, config, &list_separators[0].to_string())?;
    if let Some(title) = columns.get(&Field::Title) {
        source.title_headers.push(title.header.clone());
    }
    let key = match args.key.as_deref().or(config.key.as_deref()) {
        None => None,
        Some(text) => Some(KeySpec::parse(text).map_err(|e| flag(&given("--key", args.key.is_some()), e))?),
    };
    let rules = RowRules {
        timezone: resolve_timezone(args, config)?,
        date_order: resolve_date_order(args, config)?,
        list_separators,
        timestamp_unit: resolve_timestamp_unit(args, config)?,
        defaults,
        status_words: resolve_status_words(args, config)?,
    };
    crate::validate::Validator::check_defaults(&rules).map_err(|m| flag("--project-id / --status / [defaults]", m))?;
    Ok(ReadSettings {
        input,
        source,
        columns,
        rules,
        key,
        quiet: args.quiet || config.quiet.unwrap_or(false),
    })
}

/// How the input is read: the sheet, the header row, the delimiter and encoding, the caps.
fn resolve_source(args: &ReadArgs, config: &ConfigFile) -> Result<SourceOptions, SettingsError> {
    let delimiter = match args.delimiter.as_deref().or(config.delimiter.as_deref()) {
        None => None,
        Some(d) => Some(parse_delimiter(d).map_err(|e| match e {
            SettingsError::Flag { message, .. } => flag(&given("--delimiter", args.delimiter.is_some()), message),
            other => other,
        })?),
    };
    let encoding = args.encoding.clone().or_else(|| config.encoding.clone());
    if let Some(label) = &encoding
        && crate::read::encoding_for_label(label).is_none()
    {
        return Err(flag(
            &given("--encoding", args.encoding.is_some()),
            format!("`{label}` is not an encoding this tool knows; try windows-1252, iso-8859-1, utf-16le or utf-8"),
        ));
    }
    let header_row = args.header_row.or(config.header_row).unwrap_or(1);
    if header_row == 0 {
        return Err(flag(
            &given("--header-row", args.header_row.is_some()),
            "rows count from 1: the first row is --header-row 1",
        ));
    }
    let defaults = SourceOptions::default();
    let sheet = args.sheet.clone().or_else(|| config.sheet.clone());
    let given_header = args.header_row.or(config.header_row).is_some();
    Ok(SourceOptions {
        find_table: !given_header,
        title_headers: Vec::new(),
        sheet,
        header_row,
        delimiter,
        encoding,
        max_cell_bytes: args
            .max_cell_bytes
            .or(config.max_cell_bytes)
            .unwrap_or(defaults.max_cell_bytes),
        max_columns: args.max_columns.or(config.max_columns).unwrap_or(defaults.max_columns),
    })
}

fn resolve_timezone(args: &ReadArgs, config: &ConfigFile) -> Result<Tz, SettingsError> {
    match args.timezone.as_deref().or(config.timezone.as_deref()) {
        None => Ok(Tz::UTC),
        Some(name) => Tz::from_str(name.trim()).map_err(|_| {
            flag(
                &given("--timezone", args.timezone.is_some()),
                format!("`{name}` is not an IANA zone; use a name such as UTC, Europe/Berlin or America/New_York"),
            )
        }),
    }
}

fn resolve_date_order(args: &ReadArgs, config: &ConfigFile) -> Result<Option<DateOrder>, SettingsError> {
    let Some(o) = args.date_order.as_deref().or(config.date_order.as_deref()) else {
        return Ok(None);
    };
    DateOrder::from_str(o.trim()).map(Some).map_err(|_| {
        flag(
            &given("--date-order", args.date_order.is_some()),
            format!("`{o}`: use ymd, dmy or mdy"),
        )
    })
}

fn resolve_timestamp_unit(args: &ReadArgs, config: &ConfigFile) -> Result<TimestampUnit, SettingsError> {
    match args.timestamp_unit.as_deref().or(config.timestamp_unit.as_deref()) {
        None => Ok(TimestampUnit::Seconds),
        Some(u) => TimestampUnit::from_str(u.trim()).map_err(|_| {
            flag(
                &given("--timestamp-unit", args.timestamp_unit.is_some()),
                format!("`{u}`: use seconds or milliseconds"),
            )
        }),
    }
}

fn resolve_list_separators(args: &ReadArgs, config: &ConfigFile) -> Result<Vec<char>, SettingsError> {
    let Some(chars) = args.list_separators.as_deref().or(config.list_separators.as_deref()) else {
        return Ok(RowRules::default().list_separators);
    };
    let mut list: Vec<char> = chars.replace("\\n", "\n").replace("\\t", "\t").chars().collect();
    if list.is_empty() {
        return Err(flag(
            &given("--list-separators", args.list_separators.is_some()),
            "give at least one character, e.g. --list-separators ','",
        ));
    }
    if list.contains(&'\n') {
        list.push('\r');
    }
    Ok(list)
}

/// Columns and defaults, each later source winning: a mapping file named by the config,
/// the config's own tables and values, then a mapping file named by --mapping, then the
/// flags (and environment) themselves. `joiner` joins a list default given as an array.
fn resolve_columns(args: &ReadArgs, config: &ConfigFile, joiner: &str) -> Result<(Columns, Defaults), SettingsError> {
    let mut columns = BTreeMap::new();
    let mut defaults: Defaults = BTreeMap::new();
    if args.mapping.is_none()
        && let Some(path) = &config.mapping
    {
        add_mapping(path, &mut columns, &mut defaults, joiner)?;
    }
    let (config_columns, config_defaults) = (&config.columns, &config.defaults);
    add_tables(
        &mut columns,
        &mut defaults,
        config_columns,
        config_defaults,
        "the config file",
        joiner,
    )?;
    if let Some(status) = &config.status {
        set_status(&mut defaults, status)?;
    }
    if let Some(project) = &config.project_id {
        defaults.insert(Field::ProjectId, project.to_string());
    }
    if let Some(path) = &args.mapping {
        add_mapping(path, &mut columns, &mut defaults, joiner)?;
    }
    for spec in &args.columns {
        let (field, header) = parse_column_spec(spec)?;
        let source_name = "--column".to_string();
        columns.insert(field, ExplicitColumn { header, source_name });
    }
    if let Some(status) = &args.status {
        set_status(&mut defaults, status)?;
    }
    if let Some(project) = &args.project_id {
        defaults.insert(Field::ProjectId, project.to_string());
    }
    Ok((columns, defaults))
}

type Columns = BTreeMap<Field, ExplicitColumn>;
type Defaults = BTreeMap<Field, String>;

/// A mapping file's `[columns]` and `[defaults]`, over what is there already.
fn add_mapping(path: &Path, columns: &mut Columns, defaults: &mut Defaults, joiner: &str) -> Result<(), SettingsError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| flag("--mapping", format!("cannot read {}: {e}", path.display())))?;
    let file: MappingFile = toml::from_str(&text).map_err(|e| flag("--mapping", format!("{}: {e}", path.display())))?;
    let source = format!("--mapping {}", path.display());
    add_tables(columns, defaults, &file.columns, &file.defaults, &source, joiner)
}

/// `[values.status]` of the config file, then of the mapping file (which wins word by
/// word): each word must map to ACTIVE or CLOSED.
fn resolve_status_words(args: &ReadArgs, config: &ConfigFile) -> Result<BTreeMap<String, &'static str>, SettingsError> {
    let mut words = BTreeMap::new();
    let mut add = |values: &BTreeMap<String, BTreeMap<String, String>>, source: &str| {
        for (field, table) in values {
            if field != "status" {
                return Err(flag(
                    source,
                    format!("[values.{field}]: only [values.status] maps words"),
                ));
            }
            for (word, status) in table {
                let status = match status.trim().to_uppercase().as_str() {
                    "ACTIVE" => "ACTIVE",
                    "CLOSED" => "CLOSED",
                    _ => {
                        return Err(flag(
                            source,
                            format!("[values.status] `{word}` = `{status}`: a word must map to ACTIVE or CLOSED"),
                        ));
                    }
                };
                words.insert(crate::validate::status_word(word), status);
            }
        }
        Ok(())
    };
    let mapping = args.mapping.as_ref().or(config.mapping.as_ref());
    add(&config.values, "--config")?;
    if let Some(path) = mapping {
        let text = std::fs::read_to_string(path)
            .map_err(|e| flag("--mapping", format!("cannot read {}: {e}", path.display())))?;
        let file: MappingFile =
            toml::from_str(&text).map_err(|e| flag("--mapping", format!("{}: {e}", path.display())))?;
        add(&file.values, "--mapping")?;
    }
    Ok(words)
}

/// The status words of `testsigma-import.toml` here (and the mapping file it names), as
/// written, for the template's drop-down; none when there is no such file or it cannot be
/// read (the template is written all the same).
pub fn template_status_words() -> Vec<String> {
    let Ok((config, Some(_))) = load_config(None) else {
        return Vec::new();
    };
    let mut words: Vec<String> = config
        .values
        .get("status")
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(file) = config
        .mapping
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| toml::from_str::<MappingFile>(&text).ok())
    {
        words.extend(file.values.get("status").into_iter().flat_map(|t| t.keys().cloned()));
    }
    words.dedup();
    words
}

/// The default status (`--status`, or the config's `status`): ACTIVE or CLOSED.
fn set_status(defaults: &mut Defaults, status: &str) -> Result<(), SettingsError> {
    let upper = status.trim().to_uppercase();
    if upper != "ACTIVE" && upper != "CLOSED" {
        return Err(flag("--status", format!("`{status}`: use ACTIVE or CLOSED")));
    }
    defaults.insert(Field::Status, upper);
    Ok(())
}

fn add_tables(
    columns: &mut BTreeMap<Field, ExplicitColumn>,
    defaults: &mut BTreeMap<Field, String>,
    column_table: &BTreeMap<String, String>,
    default_table: &BTreeMap<String, toml::Value>,
    source_name: &str,
    joiner: &str,
) -> Result<(), SettingsError> {
    for (field, header) in column_table {
        let field = Field::from_str(field)?;
        columns.insert(
            field,
            ExplicitColumn {
                header: header.clone(),
                source_name: source_name.to_string(),
            },
        );
    }
    for (field, value) in default_table {
        let field = Field::from_str(field)?;
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(joiner),
            other => other.to_string(),
        };
        defaults.insert(field, text);
    }
    Ok(())
}

fn parse_delimiter(text: &str) -> Result<u8, SettingsError> {
    match text {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\t" | "\\t" | "tab" | "TAB" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        other if other.len() == 1 && other.is_ascii() => Ok(other.as_bytes()[0]),
        other => Err(flag(
            "--delimiter",
            format!("`{other}`: use one character such as `,` `;` `|` or the word tab"),
        )),
    }
}

const MAX_RETRIES: u32 = 100;

fn resolve_max_retries(args: &ImportArgs, config: &ConfigFile) -> Result<u32, SettingsError> {
    let retries = args.max_retries.or(config.max_retries).unwrap_or(5);
    if retries > MAX_RETRIES {
        return Err(flag(
            &given("--max-retries", args.max_retries.is_some()),
            format!("`{retries}`: give a number from 0 to {MAX_RETRIES}"),
        ));
    }
    Ok(retries)
}

/// Whether two paths name one file: the same file system entry (a hard link or a symlink
/// too), or, for paths that do not exist yet, the same text.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

pub fn resolve_import(args: &ImportArgs) -> Result<ImportSettings, SettingsError> {
    let (config, config_path) = load_config(args.read.config.as_deref())?;
    let read = resolve_read(&args.read, &config)?;
    let service = resolve_service(&args.service, &config, config_path.as_deref())?;
    let report = resolve_report(args, &config, &read.input)?;
    let state = resolve_state(args, &config, service.sandbox, &read.input)?;
    Ok(ImportSettings {
        read,
        service,
        dry_run: args.dry_run,
        plan: args.plan.clone().or_else(|| config.plan.clone()),
        report,
        rate: resolve_rate(args, &config)?,
        concurrency: resolve_concurrency(args, &config)?,
        max_retries: resolve_max_retries(args, &config)?,
        state,
        force: args.force,
        retry_unknown: args.retry_unknown,
        lookup: !(args.no_lookup || config.no_lookup.unwrap_or(false)),
        update_changed: args.update_changed || config.update_changed.unwrap_or(false),
        moved_from: resolve_moved_from(args, &config)?,
        summary_json: args.summary_json.clone().or_else(|| config.summary_json.clone()),
        skip_invalid: args.skip_invalid || config.skip_invalid.unwrap_or(false),
        config_path,
    })
}

fn resolve_rate(args: &ImportArgs, config: &ConfigFile) -> Result<f64, SettingsError> {
    let rate = args.rate.or(config.rate).unwrap_or(8.0);
    if !(0.2..=10_000.0).contains(&rate) {
        return Err(flag(
            &given("--rate", args.rate.is_some()),
            format!("`{rate}`: give requests per second between 0.2 and 10000"),
        ));
    }
    // The limit holds in every one-second window, where 1.5 can only mean 1 or 2.
    if rate > 1.0 && rate.fract() != 0.0 {
        return Err(flag(
            &given("--rate", args.rate.is_some()),
            format!(
                "`{rate}`: no one-second window may hold more than the rate, so above 1 give a whole number of requests per second (below 1 a fraction is fine: 0.5 is one request every 2 s)"
            ),
        ));
    }
    Ok(rate)
}

fn resolve_concurrency(args: &ImportArgs, config: &ConfigFile) -> Result<usize, SettingsError> {
    let concurrency = args.concurrency.or(config.concurrency).unwrap_or(4);
    if concurrency == 0 || concurrency > 256 {
        return Err(flag(
            &given("--concurrency", args.concurrency.is_some()),
            format!("`{concurrency}`: give a number from 1 to 256"),
        ));
    }
    Ok(concurrency)
}

/// `--report`, or `<input stem>.report.csv` in the working directory.
fn resolve_report(args: &ImportArgs, config: &ConfigFile, input: &Input) -> Result<PathBuf, SettingsError> {
    let report = match args.report.clone().or_else(|| config.report.clone()) {
        Some(p) => p,
        None => PathBuf::from(format!("{}.report.csv", input_stem(input))),
    };
    if args.plan.as_deref() == Some(Path::new("-")) && same_file(&report, Path::new("/dev/stdout")) {
        return Err(flag(
            "--report",
            format!(
                "`{}` is standard output, where `--plan -` writes the plan; the two would be mixed, so give the report a file",
                report.display()
            ),
        ));
    }
    if report == Path::new("-") {
        return Err(flag(
            "--report",
            "`-`: the report is a file, whose extension picks its format (.csv, .json, .jsonl); for standard output give /dev/stdout (or use --plan - for the requests)".to_string(),
        ));
    }
    Ok(report)
}

/// The ledger: `--state`, or the default, or none (`--no-state`). The in-process sandbox
/// starts empty every run, so a ledger would have nothing to protect; an explicit
/// `--state` still gets one.
fn resolve_state(
    args: &ImportArgs,
    config: &ConfigFile,
    sandbox: bool,
    input: &Input,
) -> Result<Option<PathBuf>, SettingsError> {
    let sandbox_default = sandbox && args.state.is_none() && config.state.is_none();
    if args.no_state || sandbox_default {
        return Ok(None);
    }
    match args.state.clone().or_else(|| config.state.clone()) {
        Some(state) => Ok(Some(state)),
        None => default_state(input).map(Some),
    }
}

/// The default ledger: a `testsigma-import.state.jsonl` in the working directory if there
/// is one (where earlier versions kept it), else one per input file in the user's state
/// directory (`$XDG_STATE_HOME/testsigma-import/`, or the platform's equivalent), named
/// after the file and a hash of its absolute path, so a nightly job finds the same ledger
/// from whatever directory it starts in.
pub fn default_state(input: &Input) -> Result<PathBuf, SettingsError> {
    if Path::new(DEFAULT_STATE).is_file() {
        return Ok(PathBuf::from(DEFAULT_STATE));
    }
    let dirs = directories::ProjectDirs::from("", "", "testsigma-import").ok_or_else(|| {
        flag(
            "--state",
            "no home directory to keep the ledger in; pass --state FILE (or --no-state)",
        )
    })?;
    let dir = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir());
    let absolute = match input {
        Input::File(path) => std::path::absolute(path).unwrap_or_else(|_| path.clone()),
        // Standard input has no path: its ledger goes with the working directory.
        Input::Bytes { .. } => std::env::current_dir().unwrap_or_default().join(input_stem(input)),
    };
    let mut hash = hex::encode(sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
        absolute.as_os_str().as_encoded_bytes(),
    )));
    hash.truncate(12);
    std::fs::create_dir_all(dir).map_err(|e| {
        flag(
            "--state",
            format!("cannot create {} for the ledger: {e}; pass --state FILE", dir.display()),
        )
    })?;
    Ok(dir.join(format!("{}-{hash}.state.jsonl", input_stem(input))))
}

fn resolve_moved_from(args: &ImportArgs, config: &ConfigFile) -> Result<Option<String>, SettingsError> {
    let Some(url) = args.moved_from.as_deref().or(config.moved_from.as_deref()) else {
        return Ok(None);
    };
    // The check's message names --base-url, the flag it was written for.
    crate::service::check_base_url(url, true).map(Some).map_err(|e| {
        flag(
            &given("--moved-from", args.moved_from.is_some()),
            e.to_string().replacen("--base-url ", "", 1),
        )
    })
}

/// The input's file name without its extension: `stdin` for `-` and for a pipe the shell
/// made (`<(command)` is `/dev/fd/63`), the pipe's own name for a named pipe.
pub fn input_stem(input: &Input) -> String {
    let path = match input {
        Input::File(path) => path.as_path(),
        Input::Bytes { name, .. } if name.starts_with("/dev/") || name.starts_with("/proc/") || name == "<stdin>" => {
            return "stdin".to_string();
        }
        Input::Bytes { name, .. } => std::path::Path::new(name.as_str()),
    };
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_refused_command_line_gives_its_summary_path_unless_it_is_another_argument() {
        let args = |words: &[&str]| -> Vec<std::ffi::OsString> {
            std::iter::once("testsigma-import")
                .chain(words.iter().copied())
                .map(Into::into)
                .collect()
        };
        let path = |words: &[&str]| summary_path_of_refused_args(&args(words));
        assert_eq!(
            path(&["import", "in.csv", "--rate", "x", "--summary-json", "s.json"]),
            Some(PathBuf::from("s.json"))
        );
        assert_eq!(
            path(&["import", "--summary-json=s.json", "in.csv"]),
            Some(PathBuf::from("s.json"))
        );
        // A global option's value before the subcommand is not the subcommand.
        assert_eq!(
            path(&[
                "--timestamps",
                "never",
                "import",
                "in.csv",
                "--rate",
                "x",
                "--summary-json",
                "s.json"
            ]),
            Some(PathBuf::from("s.json"))
        );
        for (words, why) in [
            (&["check", "in.csv", "--summary-json", "s.json"][..], "not an import"),
            (&["import", "in.csv", "--summary-json"][..], "no value"),
            (
                &["import", "in.csv", "--summary-json", "--dry-run"][..],
                "a flag, not a path",
            ),
            (&["import", "in.csv", "--summary-json", "in.csv"][..], "the input"),
            (&["import", "in.csv", "--summary-json", DEFAULT_STATE][..], "the ledger"),
            (
                &["import", "in.csv", "--summary-json", DEFAULT_CONFIG][..],
                "the config",
            ),
            (
                &["import", "--config=c.toml", "--summary-json", "c.toml"][..],
                "--flag=value",
            ),
            (
                &["help", "import", "--summary-json", "h.json"][..],
                "help, not an import",
            ),
        ] {
            assert_eq!(path(words), None, "{why}");
        }
        assert_eq!(
            path(&["--log-format", "json", "import", "--summary-json", "s.json"]),
            Some(PathBuf::from("s.json"))
        );
        // A file that exists is written over only when it is a summary already.
        let dir = tempfile::tempdir().expect("a temp dir");
        let (summary, notes) = (dir.path().join("s.json"), dir.path().join("notes.txt"));
        std::fs::write(&summary, "{\"exit_code\": 0}").expect("write");
        std::fs::write(&notes, "mine").expect("write");
        let at = |p: &Path| path(&["import", "in.csv", "--summary-json", p.to_str().unwrap_or_default()]);
        assert_eq!(at(&summary), Some(summary.clone()));
        assert_eq!(at(&notes), None);
    }

    #[test]
    fn delimiters() {
        for (text, want) in [(",", b','), (";", b';'), ("tab", b'\t'), ("\\t", b'\t'), ("|", b'|')] {
            assert_eq!(parse_delimiter(text).unwrap(), want, "{text}");
        }
        assert!(
            parse_delimiter("ab")
                .unwrap_err()
                .to_string()
                .starts_with("--delimiter")
        );
    }

    #[test]
    fn config_keys_in_either_spelling_and_unknown_keys_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "project_id = \"x\"\nrate = 3\n[columns]\ntitle = \"Run\"\n").unwrap();
        let (config, _) = load_config(Some(&path)).unwrap();
        assert_eq!(config.project_id.as_deref(), Some("x"));
        assert_eq!(config.rate, Some(3.0));
        assert_eq!(config.columns.get("title").map(String::as_str), Some("Run"));
        std::fs::write(&path, "rat = 3\n").unwrap();
        let err = load_config(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("rat"), "{err}");
    }

    /// `--help` says each default in words, since clap cannot show a default it does not
    /// apply (settings must tell "not given" from "given"): the words must be the values
    /// these settings resolve to.
    #[test]
    fn the_defaults_the_help_shows_are_the_ones_applied() {
        use clap::CommandFactory;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("empty.toml");
        std::fs::write(&config, "").unwrap();
        let args = ImportArgs {
            read: ReadArgs {
                file: "runs.csv".into(),
                config: Some(config),
                ..ReadArgs::default()
            },
            no_state: true,
            ..ImportArgs::default()
        };
        let settings = resolve_import(&args).unwrap();
        let cli = crate::cli::Cli::command();
        let import = cli.find_subcommand("import").expect("an import command");
        let help = |id: &str| -> String {
            let arg = import.get_arguments().find(|a| a.get_id() == id);
            arg.and_then(|a| a.get_help())
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        let unit = match settings.read.rules.timestamp_unit {
            TimestampUnit::Seconds => "seconds",
            TimestampUnit::Milliseconds => "milliseconds",
        };
        for (id, value) in [
            ("rate", settings.rate.to_string()),
            ("concurrency", settings.concurrency.to_string()),
            ("max_retries", settings.max_retries.to_string()),
            ("timeout", settings.service.timeout.as_secs_f64().to_string()),
            ("base_url", settings.service.base_url.clone()),
            ("header_row", settings.read.source.header_row.to_string()),
            ("max_cell_bytes", settings.read.source.max_cell_bytes.to_string()),
            ("max_columns", settings.read.source.max_columns.to_string()),
            ("timezone", settings.read.rules.timezone.name().to_string()),
            ("timestamp_unit", unit.to_string()),
        ] {
            let said = help(id);
            assert!(said.contains(&format!("[default: {value}]")), "--{id}: {said}");
        }
    }

    #[test]
    fn options_that_mean_one_run_are_refused_in_a_config_file_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for (line, flag, reason) in [
            ("force = true", "--force", "send every row again"),
            ("dry_run = true", "--dry-run", "send nothing"),
            ("sandbox = true", "--sandbox", "throw-away sandbox"),
            ("no_state = true", "--no-state", "keep a ledger"),
            ("retry-unknown = true", "--retry-unknown", "may already exist"),
        ] {
            std::fs::write(&path, format!("{line}\n")).unwrap();
            let err = load_config(Some(&path)).unwrap_err().to_string();
            assert!(
                err.contains("is a flag only") && err.contains(flag) && err.contains(reason),
                "{err}"
            );
        }
    }

    #[test]
    fn flags_win_over_the_config_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(
            &config,
            "rate = 3\nconcurrency = 2\ntimezone = \"Europe/Berlin\"\nstatus = \"closed\"\nskip-invalid = true\n[columns]\ntitle = \"Run\"\n",
        )
        .unwrap();
        let base = ImportArgs {
            read: ReadArgs {
                file: "runs.csv".into(),
                config: Some(config.clone()),
                ..ReadArgs::default()
            },
            ..ImportArgs::default()
        };
        let from_config = resolve_import(&base).unwrap();
        assert_eq!((from_config.rate, from_config.concurrency), (3.0, 2));
        assert_eq!(from_config.read.rules.timezone, Tz::Europe__Berlin);
        assert_eq!(
            from_config.read.rules.defaults.get(&Field::Status).map(String::as_str),
            Some("CLOSED")
        );
        assert!(from_config.skip_invalid);
        assert_eq!(from_config.read.columns[&Field::Title].header, "Run");
        // Defaults where neither says anything.
        assert_eq!(
            (from_config.max_retries, from_config.service.timeout),
            (5, Duration::from_secs(30))
        );

        let mut flags = base.clone();
        flags.rate = Some(20.0);
        flags.read.timezone = Some("UTC".into());
        flags.read.columns = vec!["title=Name".into()];
        let from_flags = resolve_import(&flags).unwrap();
        assert_eq!((from_flags.rate, from_flags.concurrency), (20.0, 2));
        assert_eq!(from_flags.read.rules.timezone, Tz::UTC);
        assert_eq!(from_flags.read.columns[&Field::Title].header, "Name");
    }

    #[test]
    fn a_bad_value_names_the_config_key_or_the_flag_that_gave_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        let error_with = |text: &str, flags: &dyn Fn(&mut ImportArgs)| {
            std::fs::write(&config, text).unwrap();
            let mut args = ImportArgs {
                read: ReadArgs {
                    file: "runs.csv".into(),
                    config: Some(config.clone()),
                    ..ReadArgs::default()
                },
                ..ImportArgs::default()
            };
            flags(&mut args);
            resolve_import(&args).err().map(|e| e.to_string()).unwrap_or_default()
        };
        let none = |_: &mut ImportArgs| {};
        for (text, want) in [
            ("rate = 0\n", "`rate` in the config file: `0`"),
            ("concurrency = 0\n", "`concurrency` in the config file: `0`"),
            (
                "timezone = \"Mars/Olympus\"\n",
                "`timezone` in the config file: `Mars/Olympus`",
            ),
            ("date-order = \"ydm\"\n", "`date-order` in the config file: `ydm`"),
            ("delimiter = \"ab\"\n", "`delimiter` in the config file: `ab`"),
            ("timeout = 0\n", "`timeout` in the config file: `0`"),
        ] {
            let error = error_with(text, &none);
            assert!(error.starts_with(want), "{text:?}: {error}");
        }
        let error = error_with("", &|args| args.rate = Some(0.0));
        assert!(error.starts_with("--rate: `0`"), "{error}");
    }

    #[test]
    fn absurd_numbers_are_refused_naming_the_flag() {
        let args = |edit: &dyn Fn(&mut ImportArgs)| {
            let mut args = ImportArgs {
                read: ReadArgs {
                    file: "runs.csv".into(),
                    ..ReadArgs::default()
                },
                ..ImportArgs::default()
            };
            edit(&mut args);
            resolve_import(&args).err().map(|e| e.to_string()).unwrap_or_default()
        };
        for (edit, want) in [
            (
                &(|a: &mut ImportArgs| a.service.timeout = Some(1e20)) as &dyn Fn(&mut ImportArgs),
                "--timeout: `100000000000000000000`",
            ),
            (&|a| a.service.timeout = Some(f64::INFINITY), "--timeout: `inf`"),
            (&|a| a.service.timeout = Some(3601.0), "--timeout: `3601`"),
            (&|a| a.service.timeout = Some(-1.0), "--timeout: `-1`"),
            (&|a| a.max_retries = Some(u32::MAX), "--max-retries: `4294967295`"),
            (&|a| a.rate = Some(1e20), "--rate: `100000000000000000000`"),
            (&|a| a.concurrency = Some(100_000), "--concurrency: `100000`"),
        ] {
            let error = args(edit);
            assert!(error.starts_with(want), "{want}: {error}");
        }
        assert_eq!(args(&|a| a.service.timeout = Some(3600.0)), "");
        assert_eq!(args(&|a| a.service.timeout = Some(1e-9)), "");
        assert_eq!(args(&|a| a.max_retries = Some(100)), "");
    }

    #[test]
    fn a_report_is_a_file_not_a_dash() {
        let args = ImportArgs {
            read: ReadArgs {
                file: "runs.csv".into(),
                ..ReadArgs::default()
            },
            report: Some("-".into()),
            ..ImportArgs::default()
        };
        let err = resolve_import(&args).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("--report: `-`: the report is a file"), "{err}");
    }

    #[test]
    fn rates_are_whole_above_one_and_in_range() {
        let args = |rate: f64| ImportArgs {
            read: ReadArgs {
                file: "runs.csv".into(),
                ..ReadArgs::default()
            },
            rate: Some(rate),
            ..ImportArgs::default()
        };
        for (rate, ok) in [
            (0.2, true),
            (0.5, true),
            (1.0, true),
            (8.0, true),
            (10_000.0, true),
            (0.1, false),
            (1.5, false),
            (7.9, false),
            (10_001.0, false),
        ] {
            let resolved = resolve_import(&args(rate));
            assert_eq!(resolved.is_ok(), ok, "{rate}");
            if let Err(e) = resolved {
                assert!(e.to_string().starts_with(&format!("--rate: `{rate}`")), "{e}");
            }
        }
    }

    /// `--mapping` is a flag: its tables win over the config file's (and its status over the
    /// config's `status`), as flags do; a mapping file the config names does not.
    #[test]
    fn a_mapping_flag_wins_over_the_config_files_tables() {
        let dir = tempfile::tempdir().unwrap();
        let mapping = dir.path().join("map.toml");
        std::fs::write(
            &mapping,
            "[columns]\ntitle = \"Other\"\n[defaults]\nlabel_names = [\"map\"]\nstatus = \"ACTIVE\"\n",
        )
        .unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(
            &config,
            "status = \"CLOSED\"\n[columns]\ntitle = \"Run Name\"\n[defaults]\nlabel_names = [\"cfg\"]\n",
        )
        .unwrap();
        let args = |mapping_flag: Option<&Path>| ImportArgs {
            read: ReadArgs {
                file: "runs.csv".into(),
                config: Some(config.clone()),
                mapping: mapping_flag.map(Path::to_path_buf),
                ..ReadArgs::default()
            },
            ..ImportArgs::default()
        };
        let read = |settings: &ImportSettings, field| settings.read.rules.defaults.get(&field).cloned();
        let with_flag = resolve_import(&args(Some(&mapping))).unwrap();
        assert_eq!(with_flag.read.columns[&Field::Title].header, "Other");
        assert_eq!(read(&with_flag, Field::LabelNames).as_deref(), Some("map"));
        assert_eq!(read(&with_flag, Field::Status).as_deref(), Some("ACTIVE"));

        std::fs::write(
            &config,
            format!(
                "mapping = {:?}\nstatus = \"CLOSED\"\n[columns]\ntitle = \"Run Name\"\n",
                mapping.display().to_string()
            ),
        )
        .unwrap();
        let named_by_config = resolve_import(&args(None)).unwrap();
        assert_eq!(named_by_config.read.columns[&Field::Title].header, "Run Name");
        assert_eq!(read(&named_by_config, Field::LabelNames).as_deref(), Some("map"));
        assert_eq!(read(&named_by_config, Field::Status).as_deref(), Some("CLOSED"));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_in_a_readable_config_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "api-key = \"s3cret\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_config(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("chmod 600") && !err.contains("s3cret"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_config(Some(&path)).is_ok());
    }
}
