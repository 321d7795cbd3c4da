//! How to reach the service: the base URL, the key (from the environment, a key file or the
//! config), the timeout and the certificate authority.

use std::path::Path;
use std::time::Duration;

use super::{ConfigFile, SettingsError, flag, given};
use crate::cli::ServiceArgs;
use crate::service::{ApiKey, DEFAULT_BASE_URL, ServiceSettings};

pub fn resolve_service(
    args: &ServiceArgs,
    config: &ConfigFile,
    config_path: Option<&Path>,
) -> Result<ServiceSettings, SettingsError> {
    let timeout = resolve_timeout(args, config)?;
    let base_url = args
        .base_url
        .clone()
        .or_else(|| config.base_url.clone())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    let (key, key_source) = read_key(args.api_key_file.as_deref(), config, config_path)?;
    Ok(ServiceSettings {
        base_url,
        allow_insecure: args.allow_insecure || config.allow_insecure.unwrap_or(false),
        timeout,
        sandbox: args.sandbox,
        key,
        key_warning: key_file(args.api_key_file.as_deref(), config).and_then(key_file_warning),
        key_source,
        ca_cert: args.ca_cert.clone().or_else(|| config.ca_cert.clone()),
    })
}

/// The key file the key is read from, if it is read from one (as [`read_key`] chooses).
fn key_file<'a>(file_flag: Option<&'a Path>, config: &'a ConfigFile) -> Option<&'a Path> {
    let from_env = std::env::var("TESTSIGMA_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    file_flag.or_else(|| (!from_env).then_some(config.api_key_file.as_deref()).flatten())
}

/// The longest `--timeout`: an hour. No answer of this API takes that long, and a larger
/// number (`1e20`) is no time at all to the clock that would count it.
const MAX_TIMEOUT_SECS: f64 = 3600.0;

fn resolve_timeout(args: &ServiceArgs, config: &ConfigFile) -> Result<Duration, SettingsError> {
    let timeout = args.timeout.or(config.timeout).unwrap_or(30.0);
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= MAX_TIMEOUT_SECS) {
        return Err(flag(
            &given("--timeout", args.timeout.is_some()),
            format!("`{timeout}`: give a number of seconds above 0, at most {MAX_TIMEOUT_SECS}"),
        ));
    }
    // At least a millisecond: less would time every request out before it left.
    Ok(Duration::from_secs_f64(timeout).max(Duration::from_millis(1)))
}

/// The most `--max-retries`: each retry waits up to 30 s, so a hundred is most of an hour.
/// The key: `--api-key-file`, else TESTSIGMA_API_KEY, else the config's api-key-file or api-key.
fn read_key(
    file_flag: Option<&Path>,
    config: &ConfigFile,
    config_path: Option<&Path>,
) -> Result<(Option<ApiKey>, Option<String>), SettingsError> {
    let from_file = |path: &Path, name: &str| -> Result<(Option<ApiKey>, Option<String>), SettingsError> {
        let text = read_key_file(path, name)?;
        let key = ApiKey::new(text.lines().next().unwrap_or("")).ok_or_else(|| {
            flag(
                name,
                format!("{} is empty: put the API key on its first line", path.display()),
            )
        })?;
        Ok((Some(key), Some(format!("{name} {}", path.display()))))
    };
    if let Some(path) = file_flag {
        return from_file(path, "--api-key-file");
    }
    if let Ok(value) = std::env::var("TESTSIGMA_API_KEY")
        && let Some(key) = ApiKey::new(&value)
    {
        return Ok((Some(key), Some("TESTSIGMA_API_KEY".to_string())));
    }
    if let Some(path) = &config.api_key_file {
        return from_file(path, "api-key-file in the config file");
    }
    if let Some(value) = &config.api_key {
        let shown = config_path.map(|p| p.display().to_string()).unwrap_or_default();
        return Ok((ApiKey::new(value), Some(format!("api-key in {shown}"))));
    }
    Ok((None, None))
}

/// A key file's text, without the byte-order mark an editor may have put before the key.
/// A path that names no file is not repeated: it may be the key itself, pasted in place of
/// the path.
fn read_key_file(path: &Path, name: &str) -> Result<String, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            flag(
                name,
                "no file has the name given (not repeated here, in case it is the key itself); give the path of a file that holds the key, or set TESTSIGMA_API_KEY",
            )
        } else {
            flag(name, format!("cannot read {}: {e}", path.display()))
        }
    })?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text))
}

/// A warning when a key file can be read by other users than its owner: the key is
/// used all the same (refusing would stop a nightly run over a mode), but should be
/// `chmod 600`.
fn key_file_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "the API key file {} can be read by other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}
