//! Starting and stopping a simulator: listeners, TLS, routing, and the handle tests use.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use axum::Router;
use axum_server::{Handle, accept::NoDelayAcceptor, tls_rustls::RustlsConfig};
use tokio::task::JoinHandle;

use crate::{
    api,
    app::App,
    certs::{self, CertError, TlsSource},
    client::{ControlClient, ReadyLine},
    control,
    state::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
};

pub const DEFAULT_TOKEN: &str = "demo-token";
pub const DEFAULT_AUTH_HEADER: &str = "publicApiToken";
pub const DEFAULT_API_PREFIX: &str = "/api/v1";

/// How the simulator secures its listeners.
#[derive(Clone, Debug, Default)]
pub enum TlsSetup {
    /// Create a CA (reused if already in the state folder) and a fresh server certificate.
    #[default]
    Generate,
    /// Serve an operator-provided certificate chain and key. `ca` is only reported in the
    /// ready line for clients to trust.
    Files {
        cert: PathBuf,
        key: PathBuf,
        ca: Option<PathBuf>,
    },
    /// Plain HTTP, for tests that must look at the wire.
    PlainHttp,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Where generated certificates go. None: a fresh temporary folder removed on stop,
    /// so simulators started side by side never share files.
    pub state_dir: Option<PathBuf>,
    pub tls: TlsSetup,
    pub token: String,
    pub auth_header: String,
    /// Required in `X-Control-Token` on control requests when set.
    pub control_token: Option<String>,
    pub api_prefix: String,
    pub page_size: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            state_dir: None,
            tls: TlsSetup::Generate,
            token: DEFAULT_TOKEN.into(),
            auth_header: DEFAULT_AUTH_HEADER.into(),
            control_token: None,
            api_prefix: DEFAULT_API_PREFIX.into(),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("cannot create a temporary state folder: {0}")]
    TempDir(std::io::Error),
}

/// Stops a running simulator; cheap to clone into signal handlers.
#[derive(Clone)]
pub struct ShutdownHandle {
    handles: [Handle<SocketAddr>; 2],
}

impl ShutdownHandle {
    /// Stops accepting, gives in-flight requests a moment, then closes everything
    /// (a stalled body must not keep a test waiting).
    pub fn shutdown(&self) {
        for h in &self.handles {
            h.graceful_shutdown(Some(Duration::from_millis(500)));
        }
    }
}

/// A simulator serving in the current tokio runtime. Dropping it shuts it down.
pub struct RunningSim {
    /// e.g. `https://127.0.0.1:PORT/api/v1`
    pub base_url: String,
    /// e.g. `https://127.0.0.1:PORT/control`
    pub control_url: String,
    /// The CA to trust (absolute path); None for plain HTTP or files without a CA.
    pub ca_path: Option<PathBuf>,
    pub token: String,
    pub auth_header: String,
    pub control_token: Option<String>,
    /// Origin of the listener `redirectOtherOrigin` sends clients to by default.
    pub other_origin_url: String,
    pub addr: SocketAddr,
    pub shutdown: ShutdownHandle,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    _temp_dir: Option<tempfile::TempDir>,
}

pub struct Simulator;

impl Simulator {
    /// Binds, prepares TLS and starts serving; returns once connections are accepted.
    pub async fn start(config: SimConfig) -> Result<RunningSim, SimError> {
        let prefix = normalise_prefix(&config.api_prefix)?;
        if config.token.is_empty() {
            return Err(SimError::Config("token must not be empty".into()));
        }
        if config.page_size == 0 || config.page_size > MAX_PAGE_SIZE {
            return Err(SimError::Config(format!(
                "page size must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }

        let (state_dir, temp_dir) = match &config.state_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("xflow-sim-")
                    .tempdir()
                    .map_err(SimError::TempDir)?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let tls = match &config.tls {
            TlsSetup::Generate => Some(certs::prepare(&TlsSource::Generate { dir: state_dir })?),
            TlsSetup::Files { cert, key, ca } => Some(certs::prepare(&TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            })?),
            TlsSetup::PlainHttp => None,
        };

        let main = bind(SocketAddr::new(config.host, config.port))?;
        let other = bind(SocketAddr::new(config.host, 0))?;
        let addr = main.local_addr().map_err(|source| SimError::Bind {
            addr: SocketAddr::new(config.host, config.port),
            source,
        })?;
        let other_addr = other.local_addr().map_err(|source| SimError::Bind {
            addr: SocketAddr::new(config.host, 0),
            source,
        })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let origin = origin_for(scheme, addr);
        let other_origin_url = origin_for(scheme, other_addr);

        let app = App::new(
            config.page_size,
            config.token.clone(),
            &config.auth_header,
            config.control_token.clone(),
            other_origin_url.clone(),
        )
        .map_err(|_| SimError::Config(format!("invalid header name '{}'", config.auth_header)))?;
        let app = Arc::new(app);
        let api = api::router(app.clone());
        let router = if prefix.is_empty() {
            Router::new().merge(api)
        } else {
            Router::new().nest(&prefix, api)
        }
        .nest("/control", control::router(app.clone()))
        .fallback(crate::app::not_found);

        let handles = [Handle::new(), Handle::new()];
        let rustls = tls
            .as_ref()
            .map(|t| RustlsConfig::from_config(t.server_config.clone()));
        let tasks = vec![
            serve(main, router, rustls.clone(), handles[0].clone(), addr)?,
            serve(
                other,
                api::other_origin_router(app),
                rustls,
                handles[1].clone(),
                other_addr,
            )?,
        ];
        tracing::info!(%origin, other_origin = %other_origin_url, "simulator listening");
        Ok(RunningSim {
            base_url: format!("{origin}{prefix}"),
            control_url: format!("{origin}/control"),
            ca_path: tls.and_then(|t| t.ca_path),
            token: config.token,
            auth_header: config.auth_header,
            control_token: config.control_token,
            other_origin_url,
            addr,
            shutdown: ShutdownHandle { handles },
            tasks,
            _temp_dir: temp_dir,
        })
    }
}

fn normalise_prefix(prefix: &str) -> Result<String, SimError> {
    let trimmed = prefix.trim_end_matches('/');
    if !(trimmed.is_empty() || trimmed.starts_with('/')) || trimmed.starts_with("/control") {
        return Err(SimError::Config(format!(
            "API prefix '{prefix}' must start with '/' and not collide with /control"
        )));
    }
    Ok(trimmed.to_string())
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, SimError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| SimError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| SimError::Bind { addr, source })?;
    Ok(listener)
}

/// Clients get a connectable host even when listening on a wildcard address.
fn origin_for(scheme: &str, addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

fn serve(
    listener: std::net::TcpListener,
    router: Router,
    tls: Option<RustlsConfig>,
    handle: Handle<SocketAddr>,
    addr: SocketAddr,
) -> Result<JoinHandle<std::io::Result<()>>, SimError> {
    let bind_err = |source| SimError::Bind { addr, source };
    // ConnectInfo gives the control API the peer address for its loopback check.
    let make = router.into_make_service_with_connect_info::<SocketAddr>();
    // TCP_NODELAY, as production web servers set it: without it a response written in two
    // segments waits for the client's delayed ACK (40 ms on Linux) about every other request.
    Ok(match tls {
        Some(tls) => {
            let server = axum_server::from_tcp_rustls(listener, tls)
                .map_err(bind_err)?
                .map(|rustls| rustls.acceptor(NoDelayAcceptor::new()));
            tokio::spawn(server.handle(handle).serve(make))
        }
        None => {
            let server = axum_server::from_tcp(listener)
                .map_err(bind_err)?
                .acceptor(NoDelayAcceptor::new());
            tokio::spawn(server.handle(handle).serve(make))
        }
    })
}

impl RunningSim {
    /// The line `xflow-sim serve` prints once ready.
    pub fn ready_line(&self) -> ReadyLine {
        ReadyLine {
            base_url: self.base_url.clone(),
            control_url: self.control_url.clone(),
            ca_path: self.ca_path.clone(),
            pid: std::process::id(),
        }
    }

    /// A control-API client that trusts this simulator's CA.
    pub fn control(&self) -> anyhow::Result<ControlClient> {
        ControlClient::new(
            &self.control_url,
            self.ca_path.as_deref(),
            self.control_token.clone(),
        )
    }

    /// Shuts down and waits until both listeners have stopped.
    pub async fn stop(mut self) {
        self.shutdown.shutdown();
        self.wait().await;
    }

    /// Waits until the simulator stops (after [`ShutdownHandle::shutdown`]).
    pub async fn wait(&mut self) {
        for task in self.tasks.drain(..) {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("listener stopped with an error: {e}"),
                Err(e) => tracing::warn!("listener task failed: {e}"),
            }
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rules() {
        assert_eq!(normalise_prefix("/api/v1/").unwrap(), "/api/v1");
        assert_eq!(normalise_prefix("").unwrap(), "");
        assert!(normalise_prefix("api").is_err());
        assert!(normalise_prefix("/control").is_err());
    }

    #[test]
    fn wildcard_hosts_become_loopback_urls() {
        assert_eq!(
            origin_for("https", "0.0.0.0:8443".parse().unwrap()),
            "https://127.0.0.1:8443"
        );
        assert_eq!(
            origin_for("http", "[::]:80".parse().unwrap()),
            "http://[::1]:80"
        );
    }
}
