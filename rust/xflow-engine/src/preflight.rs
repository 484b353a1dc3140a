//! The preflight an administrator runs before scheduling: can this machine, as this account,
//! reach XFlow and write into the folders? One row per check, each failure with a remedy.
//! Nothing is fetched (in ack mode None a fetch would make the server forget deliveries), and no
//! file that an importer could pick up is ever created.

use crate::config::{RunConfig, ValidatedConfig};
use crate::error::EngineError;
use crate::protocol::Client;
use crate::{fsops, journal::Journal, publish, state_access};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CheckStatus {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub check: String,
    pub target: String,
    pub status: CheckStatus,
    pub detail: String,
    pub remedy: Option<String>,
}

/// The owner part of the preflight's probe files (never a state folder's id, which is hex).
const PREFLIGHT_OWNER: &str = "preflight";

fn row(check: &str, target: &str, result: Result<String, (String, &str)>) -> Check {
    match result {
        Ok(detail) => Check {
            check: check.into(),
            target: target.into(),
            status: CheckStatus::Passed,
            detail,
            remedy: None,
        },
        Err((detail, remedy)) => Check {
            check: check.into(),
            target: target.into(),
            status: CheckStatus::Failed,
            detail,
            remedy: Some(remedy.into()),
        },
    }
}

fn skipped(check: &str, target: &str, why: &str) -> Check {
    Check {
        check: check.into(),
        target: target.into(),
        status: CheckStatus::Skipped,
        detail: why.into(),
        remedy: None,
    }
}

/// All the checks, or `Cancelled` as soon as `cancel` fires: a network check is abandoned at
/// once (a name lookup stuck in a blocking thread is left to finish on its own), a folder check
/// is never started.
pub fn run(config: RunConfig, cancel: &CancellationToken) -> Result<Vec<Check>, EngineError> {
    let proxy = crate::proxy::choose(config.proxy_url.as_deref());
    let cfg = match config.validate() {
        Ok(cfg) => cfg,
        Err(e) => {
            return Ok(vec![row(
                "Configuration",
                "",
                Err((
                    e.to_string(),
                    "Correct the parameter or configuration file named in the message.",
                )),
            )]);
        }
    };
    let mut checks = vec![row(
        "Configuration",
        cfg.base_url.as_str(),
        Ok("valid".into()),
    )];
    checks.push(row("Proxy", cfg.base_url.as_str(), Ok(proxy.describe())));
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let network = rt.block_on(async {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => None,
                    network = network_checks(&cfg) => Some(network),
                }
            });
            rt.shutdown_background();
            checks.extend(network.ok_or(EngineError::Cancelled)?);
        }
        Err(e) => checks.push(row(
            "Network",
            cfg.base_url.as_str(),
            Err((e.to_string(), "Report this error.")),
        )),
    }
    let stop = || {
        if cancel.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    };
    for (system, folder) in &cfg.folders {
        stop()?;
        checks.push(folder_check(
            &format!("{} folder", system.wire_name()),
            folder,
        ));
    }
    stop()?;
    checks.extend(state_checks(&cfg.state_path));
    Ok(checks)
}

async fn network_checks(cfg: &ValidatedConfig) -> Vec<Check> {
    let url = &cfg.base_url;
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let target = format!("{host}:{port}");
    let mut checks = Vec::new();
    let addrs = match tokio::time::timeout(
        cfg.timeout,
        tokio::net::lookup_host((host.trim_matches(['[', ']']), port)),
    )
    .await
    {
        Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
        Ok(Err(e)) => {
            checks.push(row(
                "Name resolution",
                &host,
                Err((
                    e.to_string(),
                    "Check the BaseUrl host name and this server's DNS settings.",
                )),
            ));
            Vec::new()
        }
        Err(_) => {
            checks.push(row(
                "Name resolution",
                &host,
                Err(("timed out".into(), "Check this server's DNS settings.")),
            ));
            Vec::new()
        }
    };
    let Some(first) = addrs.first().copied() else {
        for name in ["TCP connection", "TLS", "Authentication"] {
            checks.push(skipped(name, &target, "the host name did not resolve"));
        }
        return checks;
    };
    let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    checks.push(row("Name resolution", &host, Ok(list.join(", "))));

    let tcp = tokio::time::timeout(
        cfg.timeout.min(Duration::from_secs(30)),
        tokio::net::TcpStream::connect(first),
    )
    .await;
    let tcp_ok = matches!(tcp, Ok(Ok(_)));
    checks.push(row(
        "TCP connection",
        &first.to_string(),
        match tcp {
            Ok(Ok(_)) => Ok("connected".into()),
            Ok(Err(e)) => Err((
                e.to_string(),
                "Open the firewall for outbound HTTPS to this address, or configure the proxy.",
            )),
            Err(_) => Err((
                "timed out".into(),
                "Open the firewall for outbound HTTPS to this address, or configure the proxy.",
            )),
        },
    ));

    // An empty acknowledgement proves TLS and the token without touching any delivery.
    let probe = match Client::new(cfg) {
        Ok(client) => client.ack_empty().await,
        Err(e) => Err(e),
    };
    let tls_remedy = "Install the issuing CA in the machine's trust store, or pass \
                      -CaCertificatePath; check that a TLS-inspecting proxy is trusted.";
    match probe {
        Ok(()) => {
            checks.push(row("TLS", &target, Ok("certificate chain trusted".into())));
            checks.push(row(
                "Authentication",
                url.as_str(),
                Ok("token accepted".into()),
            ));
        }
        Err(e @ EngineError::AuthenticationFailed { .. }) => {
            checks.push(row("TLS", &target, Ok("certificate chain trusted".into())));
            checks.push(row(
                "Authentication",
                url.as_str(),
                Err((
                    e.to_string(),
                    "Ask XFlow for a valid API token and store it with New-XFlowDeliveryConfig.",
                )),
            ));
        }
        Err(e) if is_certificate_error(&e) => {
            checks.push(row("TLS", &target, Err((e.to_string(), tls_remedy))));
            checks.push(skipped("Authentication", url.as_str(), "TLS failed"));
        }
        Err(e) => {
            let detail = e.to_string();
            checks.push(if tcp_ok {
                row("TLS", &target, Err((detail, tls_remedy)))
            } else {
                skipped("TLS", &target, "no TCP connection")
            });
            checks.push(skipped(
                "Authentication",
                url.as_str(),
                "no answer from the server",
            ));
        }
    }
    checks
}

fn is_certificate_error(e: &EngineError) -> bool {
    let text = e.to_string().to_lowercase();
    ["certificate", "tls", "ssl", "handshake"]
        .iter()
        .any(|w| text.contains(w))
}

/// The folder exists, a temp file can be created, fsynced and renamed without replacing there.
/// Both names are our hidden temp names, so no importer ever sees the probe.
pub fn folder_check(what: &str, folder: &Path) -> Check {
    let target = folder.display().to_string();
    let result = (|| -> Result<String, EngineError> {
        match std::fs::metadata(folder) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(EngineError::PublishFailed {
                    path: folder.to_path_buf(),
                    reason: "not a folder".into(),
                });
            }
            Err(e) => return Err(EngineError::from_io(folder, &e)),
        }
        let staged = publish::stage(
            folder,
            PREFLIGHT_OWNER,
            "probe",
            &mut &b"XFlowDelivery preflight"[..],
        )?;
        let renamed = folder.join(publish::temp_name(PREFLIGHT_OWNER, "probe-renamed"));
        let outcome = fsops::rename_noreplace(&staged.temp_path, &renamed)
            .map_err(|e| EngineError::from_io(folder, &e));
        let _ = std::fs::remove_file(&staged.temp_path);
        let _ = std::fs::remove_file(&renamed);
        outcome?;
        Ok("exists; create, fsync and no-replace rename work".into())
    })();
    row(
        what,
        &target,
        result.map_err(|e| {
            let remedy = match e.error_id() {
                "FolderNotFound" => "Create the folder, or correct the path in the configuration.",
                "AccessDenied" => {
                    "Give the task's account Modify rights on the folder (NTFS and share \
                     permissions)."
                }
                "DiskFull" => "Free space on the volume.",
                _ => "Check the folder and the account's rights on it.",
            };
            (e.to_string(), remedy)
        }),
    )
}

/// Where the state folder is and who can read it. Exposure is looked at before anything is
/// created; an exposed folder is reported here and restricted by the next run.
fn state_checks(state: &Path) -> Vec<Check> {
    let target = state.display().to_string();
    let exposure = state_access::exposure(state);
    let opened = state_access::prepare(state, true)
        .and_then(|_| Journal::open(state).map(drop))
        .map(|()| "on a local disk; journal opens for writing".to_string());
    let location = row(
        "State folder",
        &target,
        opened.map_err(|e| {
            let remedy = if e.error_id() == "StateFolderOnNetworkShare" {
                "Put the state folder on a local disk of this server; the import folders may \
                 stay on shares."
            } else {
                "Give the task's account Modify rights on the state folder; keep it on a local \
                 disk."
            };
            (e.to_string(), remedy)
        }),
    );
    let access = row(
        "State folder access",
        &target,
        match exposure {
            Ok(None) => Ok("readable by its owner only".into()),
            Ok(Some(others)) => Err((
                format!("other accounts can read the personal data in it: {others}"),
                "The next run restricts it to its owner and says so. To do it now: Linux \
                 chmod -R go-rwx on the folder; Windows: disable inheritance and keep only \
                 SYSTEM, Administrators and the task's account.",
            )),
            Err(e) => Err((
                e.to_string(),
                "Check the account's rights on the state folder.",
            )),
        },
    );
    vec![location, access]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_folder_passes_and_keeps_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let check = folder_check("SDLoen folder", dir.path());
        assert_eq!(check.status, CheckStatus::Passed, "{check:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_folder_fails_with_a_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let check = folder_check("Prisme folder", &dir.path().join("nope"));
        assert_eq!(check.status, CheckStatus::Failed);
        assert!(check.remedy.unwrap().contains("Create the folder"));
    }

    #[test]
    fn an_invalid_configuration_is_one_failed_row() {
        let config = RunConfig::from_json(
            br#"{"baseUrl":"http://x.example/","apiToken":"t","statePath":"/tmp/s","sdLoenPath":"/tmp"}"#,
        )
        .unwrap();
        let checks = run(config, &CancellationToken::new()).unwrap();
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, CheckStatus::Failed);
    }

    #[test]
    fn a_preflight_against_a_silent_server_ends_at_once_when_cancelled() {
        // Accepts connections (the kernel does, without accept()) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = RunConfig::from_json(
            serde_json::json!({
                "baseUrl": format!("https://{}/api/", silent.local_addr().unwrap()),
                "apiToken": "t",
                "statePath": dir.path().join("state"),
                "sdLoenPath": dir.path(),
                "timeoutSec": 60
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let cancel = CancellationToken::new();
        let canceller = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            canceller.cancel();
        });
        let started = std::time::Instant::now();
        let result = run(config, &cancel);
        assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            !dir.path().join("state").exists(),
            "no check ran after the cancel"
        );
    }

    #[test]
    fn an_unresolvable_host_skips_the_rest_of_the_network_checks() {
        let dir = tempfile::tempdir().unwrap();
        let config = RunConfig::from_json(
            serde_json::json!({
                "baseUrl": "https://no-such-host.invalid/api/",
                "apiToken": "t",
                "statePath": dir.path().join("state"),
                "sdLoenPath": dir.path(),
                "timeoutSec": 5
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let checks = run(config, &CancellationToken::new()).unwrap();
        let status = |name: &str| checks.iter().find(|c| c.check == name).unwrap().status;
        assert_eq!(status("Name resolution"), CheckStatus::Failed);
        assert_eq!(status("TLS"), CheckStatus::Skipped);
        assert_eq!(status("SDLoen folder"), CheckStatus::Passed);
        assert_eq!(status("State folder"), CheckStatus::Passed);
    }
}
