//! The TLS side of the HTTP client; docs/design.md ("TLS") records the choice and its figures.
//!
//! Windows: SChannel through native-tls. It trusts the Windows certificate store (where group
//! policy and TLS-inspecting proxies put their CAs) and follows the protocol and cipher settings
//! Windows administrators manage; building it is cheap, so it is built per run as before.
//!
//! Elsewhere: rustls (ring) with the platform verifier, which reads the system store
//! (`/etc/ssl/certs` and the like; SSL_CERT_FILE/SSL_CERT_DIR override it). Loading that store is
//! most of an idle run's cost (OpenSSL through native-tls parsed the bundle twice per run, about
//! 65 ms each here), so the configuration is built once per process and extra CA bundle and
//! shared by every later run in the session; its TLS session cache is shared with it.

use crate::error::{EngineError, Result};
use reqwest::ClientBuilder;

fn not_pem(reason: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidConfiguration(format!("CA certificate is not PEM: {reason}"))
}

/// Makes `builder` trust the system store plus the certificates in `extra_ca_pem`.
#[cfg(windows)]
pub(crate) fn configure(
    mut builder: ClientBuilder,
    extra_ca_pem: Option<&[u8]>,
) -> Result<ClientBuilder> {
    if let Some(pem) = extra_ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(not_pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.tls_backend_native())
}

/// Makes `builder` trust the system store plus the certificates in `extra_ca_pem`.
#[cfg(not(windows))]
pub(crate) fn configure(
    builder: ClientBuilder,
    extra_ca_pem: Option<&[u8]>,
) -> Result<ClientBuilder> {
    Ok(builder.tls_backend_preconfigured(cached::config(extra_ca_pem)?))
}

#[cfg(not(windows))]
mod cached {
    use super::not_pem;
    use crate::error::{EngineError, Result};
    use rustls::ClientConfig;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use std::sync::{Arc, Mutex};

    /// A session uses one or two CA settings; more than this many means something keeps changing
    /// them, and the oldest configuration is dropped.
    const KEEP: usize = 4;

    /// Built configurations, keyed by the extra CA bundle (None: the system store alone).
    static CONFIGS: Mutex<Vec<(Option<Vec<u8>>, ClientConfig)>> = Mutex::new(Vec::new());

    pub(super) fn config(extra_ca_pem: Option<&[u8]>) -> Result<ClientConfig> {
        let key = extra_ca_pem.map(<[u8]>::to_vec);
        let mut configs = CONFIGS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, config)) = configs.iter().find(|(k, _)| *k == key) {
            // Cheap: the verifier and the session cache are shared through Arcs.
            return Ok(config.clone());
        }
        let config = build(extra_ca_pem)?;
        if configs.len() == KEEP {
            configs.remove(0);
        }
        configs.push((key, config.clone()));
        Ok(config)
    }

    /// How many configurations were built in this process (tests: a second run reuses one).
    #[cfg(test)]
    pub(super) fn built() -> usize {
        CONFIGS.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub(super) fn build(extra_ca_pem: Option<&[u8]>) -> Result<ClientConfig> {
        let extra = match extra_ca_pem {
            Some(pem) => parse_bundle(pem)?,
            None => Vec::new(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
                .map_err(|e| {
                    EngineError::InvalidConfiguration(format!(
                        "no trusted CA certificates: {e}; install the system's CA certificates \
                         or pass -CaCertificatePath"
                    ))
                })?;
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| EngineError::Internal(format!("TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // What reqwest offers when it builds the configuration itself.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Every certificate in a PEM bundle; a bundle without one is refused, like an unreadable one.
    pub(super) fn parse_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(not_pem)?;
        if certs.is_empty() {
            return Err(not_pem("the file holds no certificate"));
        }
        Ok(certs)
    }
}

#[cfg(all(test, not(windows)))]
mod tests {
    use super::cached;

    #[test]
    fn a_bundle_without_a_certificate_is_refused_by_name() {
        for bad in [
            &b""[..],
            b"hello",
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        ] {
            let err = cached::parse_bundle(bad).unwrap_err();
            assert_eq!(err.error_id(), "InvalidConfiguration");
            assert!(
                err.to_string().contains("CA certificate is not PEM"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_configuration_is_built_once_per_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let source = xflow_sim::certs::TlsSource::Generate {
            dir: dir.path().to_path_buf(),
        };
        let ca_path = xflow_sim::certs::prepare(&source).unwrap().ca_path.unwrap();
        let ca = std::fs::read(ca_path).unwrap();
        let first = cached::config(Some(&ca)).unwrap();
        let before = cached::built();
        let second = cached::config(Some(&ca)).unwrap();
        assert_eq!(cached::built(), before, "the second run builds nothing");
        assert!(std::sync::Arc::ptr_eq(
            first.crypto_provider(),
            second.crypto_provider()
        ));
        let other = cached::build(Some(&ca)).unwrap();
        assert!(!std::sync::Arc::ptr_eq(
            first.crypto_provider(),
            other.crypto_provider()
        ));
    }
}
