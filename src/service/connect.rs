//! Reaching the service: the client for the configured base URL and key, or an in-process
//! sandbox with `--sandbox`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{ApiClient, ApiKey, check_base_url};
use crate::exit::{Cause, SetupError};
use crate::sandbox::{Sandbox, SandboxOptions};
use crate::ui::{say, warn};

/// How to reach the service.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub base_url: String,
    pub allow_insecure: bool,
    pub timeout: Duration,
    pub sandbox: bool,
    pub key: Option<ApiKey>,
    /// Where the key came from, for messages (never the key itself).
    pub key_source: Option<String>,
    /// Said when the key is used: a key file others can read.
    pub key_warning: Option<String>,
    /// `--ca-cert` / `TESTSIGMA_CA_CERT`: a PEM file of authorities to trust as well.
    pub ca_cert: Option<PathBuf>,
}

/// Whether [`connect`] has from the settings alone what it needs before a request can be
/// sent: a base URL it accepts and a key (the in-process sandbox needs neither). An import
/// asks first, so that a run that could send nothing leaves every earlier file as it was.
pub fn can_connect(service: &ServiceSettings) -> Result<(), SetupError> {
    if service.sandbox {
        return Ok(());
    }
    check_base_url(&service.base_url, service.allow_insecure).map_err(|e| SetupError::new(e.to_string()))?;
    match service.key {
        Some(_) => Ok(()),
        None => Err(SetupError::new(NO_KEY).because(Cause::Key)),
    }
}

/// What a run without a key is told.
const NO_KEY: &str = "no API key: set TESTSIGMA_API_KEY or pass --api-key-file PATH (make one in Testsigma under Settings → API keys); `import --dry-run` needs none";

/// The client, and the in-process sandbox it talks to with `--sandbox`.
pub async fn connect(service: &ServiceSettings, quiet: bool) -> anyhow::Result<(ApiClient, Option<Sandbox>)> {
    if service.sandbox {
        let sandbox = Sandbox::start(SandboxOptions::default(), 0)
            .await
            .context("--sandbox: could not start the sandbox")?;
        let key = service.key.clone().unwrap_or_else(ApiKey::sandbox);
        if !quiet {
            say(&format!(
                "sandbox: talking to the in-process sandbox at {}",
                sandbox.base_url()
            ));
        }
        let client = ApiClient::new(&sandbox.base_url(), key, service.timeout, Vec::new())?;
        return Ok((client, Some(sandbox)));
    }
    let base = check_base_url(&service.base_url, service.allow_insecure).map_err(|e| SetupError::new(e.to_string()))?;
    if let Some(warning) = &service.key_warning {
        warn(warning);
    }
    let key = service.key.clone().ok_or_else(|| SetupError::new("no API key: set TESTSIGMA_API_KEY or pass --api-key-file PATH (make one in Testsigma under Settings → API keys); `import --dry-run` needs none".to_string()))?;
    let roots = extra_roots(service)?;
    let client = ApiClient::new(&base, key, service.timeout, roots)?;
    Ok((client, None))
}

/// The authorities `--ca-cert` names, read before any request: an unreadable file or one
/// without a PEM certificate is a setup error.
fn extra_roots(service: &ServiceSettings) -> Result<Vec<reqwest::Certificate>, SetupError> {
    let Some(path) = &service.ca_cert else {
        return Ok(Vec::new());
    };
    let refused = |why: String| SetupError::new(format!("--ca-cert {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| refused(format!("cannot read it: {e}")))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| refused(format!("not a PEM certificate: {}", crate::service::error_chain(&e))))?;
    if roots.is_empty() {
        return Err(refused(
            "it holds no certificate; give the authority's certificate in PEM form (-----BEGIN CERTIFICATE-----)"
                .to_string(),
        ));
    }
    Ok(roots)
}
