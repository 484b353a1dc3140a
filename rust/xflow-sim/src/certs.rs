//! TLS material: a local CA plus a server certificate for 127.0.0.1/localhost/::1, or
//! a certificate and key the operator supplies, turned into a rustls server config.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};

pub const CA_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: no usable PEM {what} found")]
    Pem { path: PathBuf, what: &'static str },
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the server certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// Create (or reuse) a CA in `dir` and issue a fresh server certificate from it.
    Generate { dir: PathBuf },
    /// Use an operator-provided chain and key; `ca` is only reported, never read.
    Files {
        cert: PathBuf,
        key: PathBuf,
        ca: Option<PathBuf>,
    },
}

pub struct TlsMaterial {
    pub server_config: Arc<ServerConfig>,
    /// The CA clients should trust, if known.
    pub ca_path: Option<PathBuf>,
}

pub fn prepare(source: &TlsSource) -> Result<TlsMaterial, CertError> {
    match source {
        TlsSource::Generate { dir } => {
            let (chain_pem, key_pem) = generate_in(dir)?;
            Ok(TlsMaterial {
                server_config: server_config(chain_pem.as_bytes(), key_pem.as_bytes(), dir)?,
                ca_path: Some(absolute(&dir.join(CA_FILE))),
            })
        }
        TlsSource::Files { cert, key, ca } => {
            let chain = read(cert)?;
            let key_pem = read(key)?;
            Ok(TlsMaterial {
                server_config: server_config(&chain, &key_pem, cert)?,
                ca_path: ca.as_deref().map(absolute),
            })
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    fs::read(path).map_err(|source| CertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    fs::write(path, contents).map_err(io)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

/// The CA's parameters are rebuilt identically on every start so that a CA key kept in
/// the state folder keeps signing certificates the already-trusted `ca.pem` validates.
fn ca_params() -> CertificateParams {
    let year = chrono::Utc::now().year();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "XFlow simulator local CA");
    dn.push(DnType::OrganizationName, "XFlow simulator");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    params
}

/// Returns (server cert + CA chain PEM, server key PEM), writing all files into `dir`.
fn generate_in(dir: &Path) -> Result<(String, String), CertError> {
    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_path = dir.join(CA_FILE);
    let ca_key_path = dir.join(CA_KEY_FILE);

    let reuse = ca_path.exists() && ca_key_path.exists();
    let ca_key = if reuse {
        let pem = String::from_utf8_lossy(&read(&ca_key_path)?).into_owned();
        KeyPair::from_pem(&pem)?
    } else {
        KeyPair::generate()?
    };
    let ca_params = ca_params();
    let ca_pem = if reuse {
        String::from_utf8_lossy(&read(&ca_path)?).into_owned()
    } else {
        let mut params = ca_params.clone();
        params.serial_number = Some(random_serial());
        let pem = params.self_signed(&ca_key)?.pem();
        write(&ca_key_path, &ca_key.serialize_pem(), true)?;
        write(&ca_path, &pem, false)?;
        pem
    };
    let issuer = Issuer::new(ca_params, ca_key);

    let year = chrono::Utc::now().year();
    let mut params = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "::1".to_string(),
    ])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "XFlow simulator");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
    let key = KeyPair::generate()?;
    let cert_pem = params.signed_by(&key, &issuer)?.pem();
    let key_pem = key.serialize_pem();
    write(&dir.join(SERVER_CERT_FILE), &cert_pem, false)?;
    write(&dir.join(SERVER_KEY_FILE), &key_pem, true)?;
    Ok((format!("{cert_pem}{ca_pem}"), key_pem))
}

fn random_serial() -> SerialNumber {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[0] &= 0x7f; // keep the DER integer positive
    SerialNumber::from_slice(&bytes)
}

/// HTTP/1.1 only: the transport faults (truncated, reset, stalled bodies) are defined in
/// HTTP/1.1 terms, and that is what the Windows client speaks to XFlow.
fn server_config(
    chain_pem: &[u8],
    key_pem: &[u8],
    origin: &Path,
) -> Result<Arc<ServerConfig>, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| CertError::Pem {
            path: origin.to_path_buf(),
            what: "certificate",
        })?;
    if chain.is_empty() {
        return Err(CertError::Pem {
            path: origin.to_path_buf(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| CertError::Pem {
        path: origin.to_path_buf(),
        what: "private key",
    })?;
    // The ring provider is passed explicitly rather than installed process-wide, so the
    // simulator works next to code that installs (or expects) a different default provider.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_then_reuses_ca() {
        let dir = tempfile::tempdir().unwrap();
        let source = TlsSource::Generate {
            dir: dir.path().to_path_buf(),
        };
        let first = prepare(&source).unwrap();
        let ca = fs::read(dir.path().join(CA_FILE)).unwrap();
        let second = prepare(&source).unwrap();
        assert_eq!(ca, fs::read(dir.path().join(CA_FILE)).unwrap());
        assert_eq!(first.ca_path, second.ca_path);
        assert!(first.ca_path.unwrap().is_absolute());
    }
}
