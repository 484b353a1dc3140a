//! Run configuration as it arrives from the cmdlet (JSON, camelCase) and its validation. A run
//! starts only from a `ValidatedConfig`, so nothing is written after a validation error.

use crate::error::{EngineError, Result};
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;
use zeroize::Zeroizing;

/// The two systems XFlow delivers to. The wire names are XFlow's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
pub enum System {
    #[serde(rename = "SDLoen")]
    SdLoen,
    #[serde(rename = "Prisme")]
    Prisme,
}

impl System {
    pub const ALL: [System; 2] = [System::SdLoen, System::Prisme];

    pub fn wire_name(self) -> &'static str {
        match self {
            System::SdLoen => "SDLoen",
            System::Prisme => "Prisme",
        }
    }

    pub fn from_wire(name: &str) -> Option<System> {
        System::ALL.into_iter().find(|s| s.wire_name() == name)
    }
}

/// `Ack`: the server keeps a delivery until we acknowledge it. `None`: the server forgets a
/// delivery as soon as it has handed it out (how the original script works).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
pub enum AckMode {
    #[default]
    Ack,
    None,
}

/// The API token. Its memory is zeroed when it is dropped (every copy: clones are zeroed too),
/// it has no `Display`, its `Debug` is redacted so that it cannot leak through a log or a panic
/// message, and it is only ever read when building the request header.
#[derive(Clone, Default)]
pub struct ApiToken(Zeroizing<String>);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(Zeroizing::new(token.into()))
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ApiToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Token;
        impl serde::de::Visitor<'_> for Token {
            type Value = ApiToken;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the API token as a string")
            }
            // Straight from the input into zeroed-on-drop memory, never through a plain String.
            fn visit_str<E>(self, v: &str) -> std::result::Result<ApiToken, E> {
                Ok(ApiToken::new(v))
            }
        }
        d.deserialize_str(Token)
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// How a system's files are checked before they are published (docs/formats.md): `Off`, `Warn`
/// (deliver, and report each finding as a warning) or `Quarantine` (keep the file out of the import
/// folder, as for a hash mismatch, until an administrator releases it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
pub enum ValidationMode {
    Off,
    #[default]
    Warn,
    Quarantine,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunConfig {
    pub base_url: String,
    pub api_token: ApiToken,
    #[serde(default)]
    pub sd_loen_path: Option<PathBuf>,
    #[serde(default)]
    pub prisme_path: Option<PathBuf>,
    pub state_path: PathBuf,
    #[serde(default)]
    pub ca_certificate_path: Option<PathBuf>,
    #[serde(default)]
    pub ack_mode: AckMode,
    #[serde(default = "default_timeout_sec")]
    pub timeout_sec: u64,
    #[serde(default)]
    pub allow_insecure_http: bool,
    #[serde(default)]
    pub what_if: bool,
    /// Whether verbose messages are wanted (a cmdlet without -Verbose asks for none): a drain
    /// then sends one event per file instead of two.
    #[serde(default = "default_verbose")]
    pub verbose: bool,
    #[serde(default = "default_auth_header")]
    pub auth_header_name: String,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    #[serde(default = "default_max_delivery_bytes")]
    pub max_delivery_bytes: u64,
    /// The whole run stops after this long (between steps, nothing partial left), so a slow
    /// server cannot make runs pile up behind the scheduler.
    #[serde(default = "default_deadline_sec")]
    pub deadline_sec: u64,
    /// An explicit proxy (`http://host:port`); without it the system's settings apply (see
    /// `proxy`: environment variables, on Windows the per-user WinINet settings, then the
    /// machine-wide WinHTTP proxy).
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// Runs older than this many days are pruned from the journal (deliveries are kept at least
    /// `journal::Retention::MIN_DELIVERY_DAYS`).
    #[serde(default = "default_run_retention_days")]
    pub run_retention_days: u32,
    #[serde(default)]
    pub sd_loen_validation: ValidationMode,
    #[serde(default)]
    pub prisme_validation: ValidationMode,
    /// A file this module published that still lies in the import folder after this many
    /// minutes means the importer has stopped (off unless set).
    #[serde(default)]
    pub sd_loen_stall_after_minutes: Option<u64>,
    #[serde(default)]
    pub prisme_stall_after_minutes: Option<u64>,
}

fn default_timeout_sec() -> u64 {
    100
}
fn default_verbose() -> bool {
    true
}
fn default_auth_header() -> String {
    "publicApiToken".to_owned()
}
fn default_page_size() -> u32 {
    100
}
fn default_max_pages() -> u32 {
    1000
}
fn default_max_delivery_bytes() -> u64 {
    512 * 1024 * 1024
}
fn default_deadline_sec() -> u64 {
    600
}
fn default_run_retention_days() -> u32 {
    90
}

/// A configuration whose URL, token and folders have been checked.
#[derive(Debug, Clone)]
pub struct ValidatedConfig {
    pub base_url: Url,
    pub api_token: ApiToken,
    pub folders: Vec<(System, PathBuf)>,
    pub state_path: PathBuf,
    pub ca_certificate_pem: Option<Vec<u8>>,
    pub ack_mode: AckMode,
    pub timeout: Duration,
    pub what_if: bool,
    pub verbose: bool,
    pub auth_header_name: reqwest::header::HeaderName,
    pub page_size: u32,
    pub max_pages: u32,
    pub max_delivery_bytes: u64,
    pub deadline: Duration,
    pub proxy: Option<reqwest::Proxy>,
    pub retention: crate::journal::Retention,
    pub validation: Vec<(System, ValidationMode)>,
    /// Systems with an importer-stall threshold.
    pub stall_after: Vec<(System, Duration)>,
}

impl ValidatedConfig {
    pub fn folder_for(&self, system: System) -> Option<&Path> {
        self.folders
            .iter()
            .find(|(s, _)| *s == system)
            .map(|(_, p)| p.as_path())
    }

    pub fn validation_for(&self, system: System) -> ValidationMode {
        self.validation
            .iter()
            .find(|(s, _)| *s == system)
            .map_or(ValidationMode::default(), |(_, m)| *m)
    }
}

impl RunConfig {
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        // serde_json's messages name the field and position but never echo string values.
        serde_json::from_slice(bytes).map_err(|e| EngineError::InvalidConfiguration(e.to_string()))
    }

    pub fn validate(self) -> Result<ValidatedConfig> {
        let invalid = |m: String| EngineError::InvalidConfiguration(m);
        let mut base_url = Url::parse(self.base_url.trim())
            .map_err(|e| invalid(format!("BaseUrl '{}' is not a URL: {e}", self.base_url)))?;
        check_scheme(&base_url, self.allow_insecure_http)?;
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(invalid(
                "BaseUrl must not carry credentials; use the API token".into(),
            ));
        }
        if !base_url.path().ends_with('/') {
            // So that Url::join appends "deliveries" instead of replacing the last segment.
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        if self.api_token.expose().trim().is_empty() {
            return Err(invalid("the API token is empty".into()));
        }
        let auth_header_name = reqwest::header::HeaderName::from_bytes(
            self.auth_header_name.as_bytes(),
        )
        .map_err(|_| {
            invalid(format!(
                "'{}' is not a valid header name",
                self.auth_header_name
            ))
        })?;
        // HeaderValue's own rule, checked in place: building one would leave an unzeroed copy.
        let header_byte = |b: u8| (b >= 0x20 && b != 0x7f) || b == b'\t';
        if !self.api_token.expose().bytes().all(header_byte) {
            return Err(invalid(
                "the API token contains characters not allowed in an HTTP header".into(),
            ));
        }

        let mut folders = Vec::new();
        for (system, path) in [
            (System::SdLoen, self.sd_loen_path),
            (System::Prisme, self.prisme_path),
        ] {
            if let Some(path) = path {
                require_absolute(&path, system.wire_name())?;
                folders.push((system, path));
            }
        }
        if folders.is_empty() {
            return Err(invalid(
                "no import folder is configured (SdLoenPath or PrismePath)".into(),
            ));
        }
        require_absolute(&self.state_path, "StatePath")?;

        let ca_certificate_pem = match &self.ca_certificate_path {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                invalid(format!(
                    "cannot read CA certificate {}: {e}",
                    path.display()
                ))
            })?),
            None => None,
        };
        if self.timeout_sec == 0 || self.timeout_sec > 3600 {
            return Err(invalid(format!(
                "TimeoutSec must be between 1 and 3600, not {}",
                self.timeout_sec
            )));
        }
        if self.deadline_sec == 0 {
            return Err(invalid("the run deadline must be positive".into()));
        }
        let proxy = crate::proxy::choose(self.proxy_url.as_deref()).to_reqwest()?;
        if !(1..=36500).contains(&self.run_retention_days) {
            return Err(invalid(format!(
                "the run retention must be between 1 and 36500 days, not {}",
                self.run_retention_days
            )));
        }
        if self.page_size == 0 || self.max_pages == 0 {
            return Err(invalid("page size and page limit must be positive".into()));
        }
        let mut stall_after = Vec::new();
        for (system, minutes) in [
            (System::SdLoen, self.sd_loen_stall_after_minutes),
            (System::Prisme, self.prisme_stall_after_minutes),
        ] {
            match minutes {
                None => {}
                Some(m) if m == 0 || m > 525_600 => {
                    return Err(invalid(format!(
                        "the {} stall threshold must be between 1 and 525600 minutes, not {m}",
                        system.wire_name()
                    )));
                }
                Some(m) => stall_after.push((system, Duration::from_secs(m * 60))),
            }
        }

        Ok(ValidatedConfig {
            base_url,
            api_token: self.api_token,
            folders,
            state_path: self.state_path,
            ca_certificate_pem,
            ack_mode: self.ack_mode,
            timeout: Duration::from_secs(self.timeout_sec),
            what_if: self.what_if,
            verbose: self.verbose,
            auth_header_name,
            page_size: self.page_size,
            max_pages: self.max_pages,
            max_delivery_bytes: self.max_delivery_bytes,
            deadline: Duration::from_secs(self.deadline_sec),
            proxy,
            retention: crate::journal::Retention::new(self.run_retention_days),
            validation: vec![
                (System::SdLoen, self.sd_loen_validation),
                (System::Prisme, self.prisme_validation),
            ],
            stall_after,
        })
    }
}

fn require_absolute(path: &Path, what: &str) -> Result<()> {
    if path.as_os_str().is_empty() || !path.is_absolute() {
        return Err(EngineError::InvalidConfiguration(format!(
            "{what} must be an absolute path, not '{}'",
            path.display()
        )));
    }
    Ok(())
}

/// https always; plain http only to a loopback address and only when explicitly allowed.
pub fn check_scheme(url: &Url, allow_insecure_http: bool) -> Result<()> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http && is_loopback(url) => Ok(()),
        "http" => Err(EngineError::InsecureUrl {
            url: url.to_string(),
        }),
        other => Err(EngineError::InvalidConfiguration(format!(
            "BaseUrl scheme '{other}' is not supported; use https"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> RunConfig {
        RunConfig {
            base_url: url.into(),
            api_token: ApiToken::new("secret-token-123"),
            sd_loen_path: Some(std::env::temp_dir()),
            prisme_path: None,
            state_path: std::env::temp_dir(),
            ca_certificate_path: None,
            ack_mode: AckMode::Ack,
            timeout_sec: 30,
            allow_insecure_http: false,
            what_if: false,
            verbose: true,
            auth_header_name: default_auth_header(),
            page_size: 100,
            max_pages: 10,
            max_delivery_bytes: default_max_delivery_bytes(),
            deadline_sec: default_deadline_sec(),
            proxy_url: None,
            run_retention_days: default_run_retention_days(),
            sd_loen_validation: ValidationMode::Warn,
            prisme_validation: ValidationMode::Warn,
            sd_loen_stall_after_minutes: None,
            prisme_stall_after_minutes: None,
        }
    }

    #[test]
    fn plain_http_is_refused_unless_loopback_and_allowed() {
        let err = config("http://127.0.0.1:8080/api").validate().unwrap_err();
        assert_eq!(err.error_id(), "InsecureUrl");

        let mut allowed = config("http://127.0.0.1:8080/api");
        allowed.allow_insecure_http = true;
        assert!(allowed.validate().is_ok());

        let mut remote = config("http://xflow.example/api");
        remote.allow_insecure_http = true;
        assert_eq!(remote.validate().unwrap_err().error_id(), "InsecureUrl");

        let mut v6 = config("http://[::1]:8080/");
        v6.allow_insecure_http = true;
        assert!(v6.validate().is_ok());
    }

    #[test]
    fn base_url_gets_a_trailing_slash_so_joins_append() {
        let cfg = config("https://xflow.example/api/v1").validate().unwrap();
        assert_eq!(
            cfg.base_url.join("deliveries").unwrap().as_str(),
            "https://xflow.example/api/v1/deliveries"
        );
    }

    #[test]
    fn relative_folders_and_empty_tokens_are_rejected() {
        let mut rel = config("https://x.example/");
        rel.sd_loen_path = Some(PathBuf::from("relative/dir"));
        assert!(rel.validate().unwrap_err().to_string().contains("absolute"));

        let mut empty = config("https://x.example/");
        empty.api_token = ApiToken::new("  ");
        assert!(empty.validate().unwrap_err().to_string().contains("empty"));

        let mut none = config("https://x.example/");
        none.sd_loen_path = None;
        assert!(none.validate().is_err());
    }

    #[test]
    fn the_token_is_redacted_in_debug_output() {
        let cfg = config("https://x.example/");
        let text = format!("{cfg:?} {:?}", cfg.clone().validate().unwrap());
        assert!(!text.contains("secret-token-123"), "{text}");
    }

    #[test]
    fn validation_defaults_to_warn_and_stall_thresholds_are_bounded() {
        let cfg = RunConfig::from_json(
            br#"{"baseUrl":"https://x.example/","apiToken":"t","sdLoenPath":"/srv/s","statePath":"/srv/st",
                "prismeValidation":"Quarantine","prismeStallAfterMinutes":90}"#,
        )
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(cfg.validation_for(System::SdLoen), ValidationMode::Warn);
        assert_eq!(
            cfg.validation_for(System::Prisme),
            ValidationMode::Quarantine
        );
        assert_eq!(
            cfg.stall_after,
            vec![(System::Prisme, Duration::from_secs(5400))]
        );
        let mut zero = config("https://x.example/");
        zero.sd_loen_stall_after_minutes = Some(0);
        assert!(zero.validate().unwrap_err().to_string().contains("stall"));
    }

    #[test]
    fn json_errors_do_not_echo_values() {
        let err = RunConfig::from_json(br#"{"baseUrl":"https://x/","apiToken":42}"#).unwrap_err();
        assert_eq!(err.error_id(), "InvalidConfiguration");
        let err =
            RunConfig::from_json(br#"{"baseUrl":"https://x/","apiToken":"tok-987","bogus":1}"#)
                .unwrap_err();
        assert!(!err.to_string().contains("tok-987"));
    }
}
