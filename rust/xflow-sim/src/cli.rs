//! `xflow-sim` command line: `serve` runs a simulator; the other subcommands drive the
//! control API of one that is already running. Parsed by hand: the vendored clap cannot
//! be built offline (its docs `include_str!` example files the mirror strips).

use std::{
    io::{IsTerminal as _, Read as _, Write as _},
    net::IpAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{
    client::{ControlClient, ReadyLine},
    faults::Target,
    samples::{SampleKind, TextEncoding},
    server::{
        DEFAULT_API_PREFIX, DEFAULT_AUTH_HEADER, DEFAULT_TOKEN, SimConfig, Simulator, TlsSetup,
    },
    state::{DEFAULT_PAGE_SIZE, Mode},
};

const USAGE: &str = "\
xflow-sim: a stand-in for the XFlow delivery API that misbehaves on demand

USAGE:
  xflow-sim serve [--host 127.0.0.1] [--port 0] [--state-dir DIR | --cert-dir DIR]
                  [--cert PEM --key PEM [--ca-cert PEM]] [--http]
                  [--token T] [--auth-header publicApiToken] [--control-token T]
                  [--prefix /api/v1] [--page-size 100] [--ready-file FILE]
                  [--exit-on-stdin-close]
      Prints one JSON ready line on stdout once it accepts connections.
      Token defaults to $XFLOW_SIM_TOKEN, else demo-token; control token to
      $XFLOW_SIM_CONTROL_TOKEN. Prefer the environment in scripts.

  xflow-sim enqueue  CONTROL (--system S (--file PATH [--file-name N] |
                     --text T --file-name N [--encoding utf-8|windows-1252]) [--id ID]
                     | --json FILE|-)
  xflow-sim generate CONTROL --count N [--size BYTES] [--systems SDLoen,Prisme]
                     [--kind sample|random] [--encoding utf-8|windows-1252] [--seed N]
  xflow-sim state    CONTROL [--summary]
  xflow-sim settings CONTROL [--mode Ack|None] [--page-size N]
  xflow-sim fault    CONTROL KIND [--on get|ack|any] [--nth N] [--param key=value]...
  xflow-sim reset    CONTROL

CONTROL (where the running simulator is):
  --ready-file FILE    a file holding the ready line ($XFLOW_SIM_READY_FILE), or
  --control-url URL    ($XFLOW_SIM_CONTROL_URL) with --ca PEM ($XFLOW_SIM_CA)
  --control-token T    ($XFLOW_SIM_CONTROL_TOKEN)

Logs go to stderr; filter with XFLOW_SIM_LOG (e.g. debug).
";

/// A command-line usage error: reported with the usage text and exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// `--name value` / `--name=value` options, boolean flags and positionals. Options are
/// taken out by name; whatever is left over is an error, so typos never pass silently.
struct Opts {
    options: Vec<(String, Option<String>)>,
    positionals: Vec<String>,
}

impl Opts {
    fn parse(args: impl IntoIterator<Item = String>, flags: &[&str]) -> anyhow::Result<Opts> {
        let mut opts = Opts {
            options: Vec::new(),
            positionals: Vec::new(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                opts.positionals.push(arg);
                continue;
            };
            if let Some((name, value)) = name.split_once('=') {
                opts.options
                    .push((name.to_string(), Some(value.to_string())));
            } else if flags.contains(&name) {
                opts.options.push((name.to_string(), None));
            } else {
                let value = args
                    .next()
                    .ok_or_else(|| usage(format!("--{name} needs a value")))?;
                opts.options.push((name.to_string(), Some(value)));
            }
        }
        Ok(opts)
    }

    fn values(&mut self, name: &str) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut rest = Vec::new();
        for (n, v) in self.options.drain(..) {
            if n == name {
                out.push(v.ok_or_else(|| usage(format!("--{name} needs a value")))?);
            } else {
                rest.push((n, v));
            }
        }
        self.options = rest;
        Ok(out)
    }

    /// The last occurrence wins, as with most CLIs.
    fn value(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self.values(name)?.pop())
    }

    fn value_or_env(&mut self, name: &str, env: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .value(name)?
            .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty())))
    }

    fn parsed<T: std::str::FromStr>(&mut self, name: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.value(name)?
            .map(|v| v.parse().map_err(|e| usage(format!("--{name} {v}: {e}"))))
            .transpose()
    }

    /// Values spelled as in the JSON APIs (e.g. `windows-1252`, `Ack`, `get`).
    fn json_enum<T: serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
    ) -> anyhow::Result<Option<T>> {
        self.value(name)?
            .map(|v| {
                serde_json::from_value(Value::String(v.clone()))
                    .map_err(|e| usage(format!("--{name} {v}: {e}")))
            })
            .transpose()
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.options.len();
        self.options.retain(|(n, v)| !(n == name && v.is_none()));
        self.options.len() != before
    }

    fn finish(self) -> anyhow::Result<()> {
        if let Some((name, _)) = self.options.first() {
            return Err(usage(format!("unknown option --{name}")));
        }
        if let Some(p) = self.positionals.first() {
            return Err(usage(format!("unexpected argument '{p}'")));
        }
        Ok(())
    }
}

fn control_client(opts: &mut Opts) -> anyhow::Result<ControlClient> {
    let ready = opts
        .value_or_env("ready-file", "XFLOW_SIM_READY_FILE")?
        .map(|p| ReadyLine::read(Path::new(&p)))
        .transpose()?;
    let url = opts
        .value_or_env("control-url", "XFLOW_SIM_CONTROL_URL")?
        .or_else(|| ready.as_ref().map(|r| r.control_url.clone()))
        .ok_or_else(|| usage("give --ready-file or --control-url"))?;
    let ca = opts
        .value_or_env("ca", "XFLOW_SIM_CA")?
        .map(PathBuf::from)
        .or_else(|| ready.and_then(|r| r.ca_path));
    let token = opts.value_or_env("control-token", "XFLOW_SIM_CONTROL_TOKEN")?;
    ControlClient::new(&url, ca.as_deref(), token)
}

pub fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    if matches!(command.as_str(), "help" | "--help" | "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if matches!(command.as_str(), "--version" | "-V") {
        println!("xflow-sim {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = args.collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xflow-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&command, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<UsageError>() => {
            eprintln!("xflow-sim: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("xflow-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so stdout carries only the ready line or command output.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("XFLOW_SIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(command: &str, args: Vec<String>) -> anyhow::Result<()> {
    let flags: &[&str] = match command {
        "serve" => &["http", "exit-on-stdin-close"],
        "state" => &["summary"],
        _ => &[],
    };
    let mut opts = Opts::parse(args, flags)?;
    let answer = match command {
        "serve" => return serve(opts).await,
        "enqueue" => {
            let client = control_client(&mut opts)?;
            let body = enqueue_body(&mut opts)?;
            opts.finish()?;
            json!({ "ids": client.enqueue(&body).await? })
        }
        "generate" => {
            let client = control_client(&mut opts)?;
            let count: u64 = opts
                .parsed("count")?
                .ok_or_else(|| usage("--count is required"))?;
            let mut body = json!({ "count": count });
            if let Some(size) = opts.parsed::<usize>("size")? {
                body["size"] = json!(size);
            }
            if let Some(systems) = opts.value("systems")? {
                body["systems"] = json!(systems.split(',').map(str::trim).collect::<Vec<_>>());
            }
            if let Some(kind) = opts.json_enum::<SampleKind>("kind")? {
                body["kind"] = json!(kind);
            }
            if let Some(encoding) = opts.json_enum::<TextEncoding>("encoding")? {
                body["encoding"] = json!(encoding);
            }
            if let Some(seed) = opts.parsed::<u64>("seed")? {
                body["seed"] = json!(seed);
            }
            opts.finish()?;
            json!({ "ids": client.generate(&body).await? })
        }
        "state" => {
            let client = control_client(&mut opts)?;
            let summary = opts.flag("summary");
            opts.finish()?;
            client.state(summary).await?
        }
        "settings" => {
            let client = control_client(&mut opts)?;
            let mode = opts.json_enum::<Mode>("mode")?;
            let page_size = opts.parsed::<usize>("page-size")?;
            opts.finish()?;
            if mode.is_none() && page_size.is_none() {
                return Err(usage("give --mode and/or --page-size"));
            }
            client.settings(mode, page_size).await?
        }
        "fault" => {
            let client = control_client(&mut opts)?;
            if opts.positionals.len() != 1 {
                return Err(usage("fault needs exactly one KIND"));
            }
            let kind = opts.positionals.remove(0);
            let on = opts.json_enum::<Target>("on")?;
            let nth = opts.parsed::<u32>("nth")?;
            let mut params = serde_json::Map::new();
            for p in opts.values("param")? {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| usage(format!("--param {p}: expected key=value")))?;
                // Numbers and booleans as JSON, anything else as a string.
                let value =
                    serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
                params.insert(k.to_string(), value);
            }
            opts.finish()?;
            let params = if params.is_empty() {
                Value::Null
            } else {
                Value::Object(params)
            };
            client.fault(&kind, on, nth, params).await?
        }
        "reset" => {
            let client = control_client(&mut opts)?;
            opts.finish()?;
            client.reset().await?
        }
        other => return Err(usage(format!("unknown command '{other}'"))),
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

fn enqueue_body(opts: &mut Opts) -> anyhow::Result<Value> {
    if let Some(path) = opts.value("json")? {
        let text = if path == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        } else {
            std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?
        };
        return serde_json::from_str(&text).context("parsing --json body");
    }
    let system = opts
        .value("system")?
        .ok_or_else(|| usage("--system is required"))?;
    let file_name = opts.value("file-name")?;
    let mut item = json!({ "system": system });
    match (opts.value("file")?, opts.value("text")?) {
        (Some(path), None) => {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
            item["contentBase64"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
            let default_name = Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            item["fileName"] = json!(file_name.or(default_name));
        }
        (None, Some(text)) => {
            item["text"] = json!(text);
            item["fileName"] = json!(file_name.ok_or_else(|| usage("--text needs --file-name"))?);
            if let Some(enc) = opts.json_enum::<TextEncoding>("encoding")? {
                item["encoding"] = json!(enc);
            }
        }
        _ => return Err(usage("give exactly one of --file, --text and --json")),
    }
    if let Some(id) = opts.value("id")? {
        item["id"] = json!(id);
    }
    Ok(json!({ "deliveries": [item] }))
}

async fn serve(mut opts: Opts) -> anyhow::Result<()> {
    let http = opts.flag("http");
    let exit_on_stdin_close = opts.flag("exit-on-stdin-close");
    let cert = opts.value("cert")?.map(PathBuf::from);
    let key = opts.value("key")?.map(PathBuf::from);
    let ca = opts.value("ca-cert")?.map(PathBuf::from);
    let tls = match (http, cert, key) {
        (true, None, None) => TlsSetup::PlainHttp,
        (true, _, _) => return Err(usage("--http and --cert/--key exclude each other")),
        (false, Some(cert), Some(key)) => TlsSetup::Files { cert, key, ca },
        (false, None, None) if ca.is_none() => TlsSetup::Generate,
        _ => {
            return Err(usage(
                "--cert and --key go together (--ca-cert only with them)",
            ));
        }
    };
    let state_dir = match (opts.value("state-dir")?, opts.value("cert-dir")?) {
        (Some(_), Some(_)) => return Err(usage("--state-dir and --cert-dir are the same option")),
        (a, b) => a.or(b).map(PathBuf::from),
    };
    let config = SimConfig {
        host: opts
            .parsed::<IpAddr>("host")?
            .unwrap_or(IpAddr::from([127, 0, 0, 1])),
        port: opts.parsed("port")?.unwrap_or(0),
        state_dir,
        tls,
        token: opts
            .value_or_env("token", "XFLOW_SIM_TOKEN")?
            .unwrap_or_else(|| DEFAULT_TOKEN.into()),
        auth_header: opts
            .value("auth-header")?
            .unwrap_or_else(|| DEFAULT_AUTH_HEADER.into()),
        control_token: opts.value_or_env("control-token", "XFLOW_SIM_CONTROL_TOKEN")?,
        api_prefix: opts
            .value("prefix")?
            .unwrap_or_else(|| DEFAULT_API_PREFIX.into()),
        page_size: opts.parsed("page-size")?.unwrap_or(DEFAULT_PAGE_SIZE),
    };
    let ready_file = opts.value("ready-file")?.map(PathBuf::from);
    opts.finish()?;

    let mut sim = Simulator::start(config).await?;
    let stop_signal = stop_signals().context("registering signal handlers")?;
    let line = serde_json::to_string(&sim.ready_line())?;
    if let Some(path) = &ready_file {
        write_atomically(path, &format!("{line}\n"))?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }

    let stdin_closed = async {
        if exit_on_stdin_close {
            wait_for_stdin_eof().await
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        _ = stop_signal => tracing::info!("signalled, stopping"),
        _ = stdin_closed => tracing::info!("stdin closed, stopping"),
    }
    sim.shutdown.shutdown();
    sim.wait().await;
    Ok(())
}

/// Readers polling for the file never see a half-written line.
fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A plain thread, not `spawn_blocking`: a blocked stdin read must not hold up runtime
/// shutdown when we stop for another reason.
async fn wait_for_stdin_eof() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 1024];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// Registered before the ready line is printed: a signal sent right after it must stop us
/// cleanly, not hit the default disposition.
#[cfg(unix)]
fn stop_signals() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(windows)]
fn stop_signals() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
    let (mut c, mut brk, mut close) = (ctrl_c()?, ctrl_break()?, ctrl_close()?);
    Ok(async move {
        tokio::select! {
            _ = c.recv() => {}
            _ = brk.recv() => {}
            _ = close.recv() => {}
        }
    })
}
