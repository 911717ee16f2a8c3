use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing::{debug, error, info, warn};

use fleet_core::app::App;
use fleet_core::config::{Config, Source};
use fleet_drivers::KINDS;
use fleet_exporter::web::{ListenAddr, WebConfig};
use fleet_exporter::{server, web};

mod fdlimit;
mod logging;

use logging::LogFormat;

/// Prometheus exporter for iKuai routers, Komari monitors, OpenVox VoIP gateways and IoT SIM
/// devices.
#[derive(Parser, Debug)]
#[command(version = LONG_VERSION, about)]
struct Cli {
    /// Configuration file (TOML, or YAML by extension).
    #[arg(long = "config.file", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Validate the configuration file and exit.
    #[arg(long = "config.check", requires = "config_file")]
    config_check: bool,
    /// Run against built-in device simulators on loopback: no config, no network.
    #[arg(long, conflicts_with = "config_file")]
    demo: bool,
    /// Address to listen on: host:port, [v6]:port, or :PORT for every interface (IPv4 and
    /// IPv6). Repeat for several; overrides `server.listen`.
    #[arg(long = "web.listen-address", value_name = "ADDR")]
    listen: Vec<ListenAddr>,
    /// Serve on the sockets systemd passes (socket activation, LISTEN_FDS) instead of
    /// --web.listen-address.
    #[arg(long = "web.systemd-socket", conflicts_with = "listen")]
    systemd_socket: bool,
    /// Open HTTP connections at most; at the cap a new one replaces the one idle longest.
    #[arg(long = "web.max-connections", value_name = "N",
          default_value_t = web::DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Scrapes (/metrics, /probe) in flight at most; past it they get 503 at once. 0: no limit.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = server::DEFAULT_MAX_REQUESTS)]
    max_requests: usize,
    /// Web config file (exporter-toolkit format): TLS and basic auth for every endpoint.
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config_file: Option<PathBuf>,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", default_value = "/metrics", value_parser = telemetry_path)]
    telemetry_path: String,
    /// Leave out the exporter's own process and HTTP series.
    #[arg(long = "web.disable-exporter-metrics")]
    disable_exporter_metrics: bool,
    /// Poll and serve only shard I of N of the targets (by a stable hash of their names);
    /// overrides `server.shard`. I may be a StatefulSet pod name ending in its ordinal.
    #[arg(long, value_name = "I/N")]
    shard: Option<fleet_core::shard::Shard>,
    /// Log level: error, warn, info, debug, trace, or a tracing filter such as
    /// `info,fleet_drivers=debug`.
    #[arg(long = "log.level", default_value = "info", value_parser = logging::parse_level)]
    log_level: String,
    /// Log format on stderr.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    log_format: LogFormat,
    /// Ask a running exporter's /-/healthy and exit 0 when it answers: a container health check
    /// that needs no shell tools in the image. Give it the server's flags: it asks the first
    /// --web.listen-address, else --config.file's `server.listen` (loopback for `:PORT` and
    /// unspecified addresses). With --web.config.file it speaks TLS (without verifying the
    /// certificate: it checks liveness, on loopback); basic auth comes from
    /// FLEET_EXPORTER_HEALTHCHECK_USERNAME and FLEET_EXPORTER_HEALTHCHECK_PASSWORD_FILE, and
    /// without them a 401 counts as alive. A required client certificate makes it fail.
    #[arg(long, conflicts_with_all = ["demo", "config_check", "systemd_socket"])]
    healthcheck: bool,
}

fn main() -> ExitCode {
    fleet_exporter::allocator::pin_large_block_thresholds();
    let cli = Cli::parse();
    logging::init(&cli.log_level, cli.log_format);
    match fdlimit::raise_to_hard_limit() {
        Ok((before, after)) if before != after => {
            info!(
                before,
                after, "raised the open-files limit to the hard limit"
            );
        }
        Ok((_, limit)) => debug!(limit, "open-files limit already at the hard limit"),
        Err(e) => warn!(error = %e, "cannot raise the open-files limit"),
    }
    if cli.config_check {
        let path = cli.config_file.as_deref().expect("clap requires it");
        return match Config::load(path, KINDS) {
            Ok(c) => {
                println!("{}: ok, {} target(s)", path.display(), c.targets.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("invalid configuration: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.healthcheck {
        return healthcheck(&cli);
    }
    // Before any thread starts: taking the sockets clears systemd's variables.
    let systemd = if cli.systemd_socket {
        match systemd_sockets() {
            Ok(sockets) => Some(sockets),
            Err(e) => {
                eprintln!("fleet-exporter: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    // Pollers get threads of their own; see `App::with_poll_runtime`.
    let (runtime, poll_runtime) =
        match new_runtime("fleet-serve").and_then(|r| Ok((r, new_runtime("fleet-poll")?))) {
            Ok(runtimes) => runtimes,
            Err(e) => {
                eprintln!("cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    let result = runtime.block_on(run(cli, poll_runtime.handle().clone(), systemd));
    // Whatever a blocking task (a bcrypt check, a file read) is still doing, the process ends.
    runtime.shutdown_timeout(Duration::from_millis(300));
    poll_runtime.shutdown_timeout(Duration::from_millis(300));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // An error that ends the process is shown whatever the log filter lets through.
            if tracing::enabled!(tracing::Level::ERROR) {
                error!("{e:#}");
            } else {
                eprintln!("fleet-exporter: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `--version`, as the Prometheus binaries print it.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision: ",
    env!("FLEET_EXPORTER_BUILD_REVISION"),
    ")\n  build date:       ",
    env!("FLEET_EXPORTER_BUILD_DATE"),
    "\n  rust version:     ",
    env!("FLEET_EXPORTER_RUSTC"),
    "\n  platform:         ",
    env!("FLEET_EXPORTER_TARGET"),
);

fn telemetry_path(s: &str) -> Result<String, String> {
    if server::RESERVED_PATHS.contains(&s) {
        Err(format!("{s:?} is another endpoint's path"))
    } else if s.starts_with('/') && !s.contains(['?', '#', '{', '}', '*', ':']) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?}: a path such as /metrics (starting with /, no query, no wildcards)"
        ))
    }
}

fn new_runtime(thread_name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name(thread_name)
        .enable_all()
        .build()
}

fn load_web_config(path: Option<&std::path::Path>) -> anyhow::Result<WebConfig> {
    match path {
        Some(path) => Ok(WebConfig::load(path).context("invalid web configuration")?),
        None => Ok(WebConfig::default()),
    }
}

/// The sockets systemd passed (`LISTEN_FDS`, for this process by `LISTEN_PID`), read by
/// `listenfd`, which implements `sd_listen_fds(3)`.
fn systemd_sockets() -> anyhow::Result<Vec<std::net::TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    anyhow::ensure!(
        fds.len() > 0,
        "--web.systemd-socket: systemd passed no socket (LISTEN_FDS unset, or LISTEN_PID names \
         another process)"
    );
    (0..fds.len())
        .map(|i| {
            let socket = fds
                .take_tcp_listener(i)
                .with_context(|| format!("--web.systemd-socket: socket {i}"))?
                .with_context(|| format!("--web.systemd-socket: socket {i} is not there"))?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        })
        .collect()
}

/// Where `--healthcheck` takes basic-auth credentials from: a user name, and a file holding the
/// password (never the password itself in the environment, as with every other secret).
const HEALTHCHECK_USERNAME: &str = "FLEET_EXPORTER_HEALTHCHECK_USERNAME";
const HEALTHCHECK_PASSWORD_FILE: &str = "FLEET_EXPORTER_HEALTHCHECK_PASSWORD_FILE";

fn healthcheck(cli: &Cli) -> ExitCode {
    match healthcheck_target(cli) {
        Ok((url, web, credentials)) => ask_healthy(&url, &web, credentials),
        Err(e) => {
            eprintln!("fleet-exporter --healthcheck: {e:#}");
            ExitCode::FAILURE
        }
    }
}

type Credentials = Option<(String, String)>;

fn healthcheck_target(cli: &Cli) -> anyhow::Result<(String, WebConfig, Credentials)> {
    let web = load_web_config(cli.web_config_file.as_deref())?;
    let listen = match (cli.listen.first(), &cli.config_file) {
        (Some(first), _) => *first,
        (None, Some(path)) => ListenAddr::from(Config::load(path, KINDS)?.listen),
        (None, None) => fleet_core::config::DEFAULT_LISTEN
            .parse()
            .expect("valid default"),
    };
    let credentials = match (
        std::env::var_os(HEALTHCHECK_USERNAME),
        std::env::var_os(HEALTHCHECK_PASSWORD_FILE),
    ) {
        (None, None) => None,
        (Some(user), Some(file)) => {
            let password = std::fs::read_to_string(&file).with_context(|| {
                format!("{HEALTHCHECK_PASSWORD_FILE}={}", file.to_string_lossy())
            })?;
            let user = user
                .into_string()
                .map_err(|_| anyhow::anyhow!("{HEALTHCHECK_USERNAME} is not UTF-8"))?;
            Some((user, password.trim_end_matches(['\r', '\n']).to_string()))
        }
        _ => anyhow::bail!("give both {HEALTHCHECK_USERNAME} and {HEALTHCHECK_PASSWORD_FILE}"),
    };
    let scheme = if web.tls_enabled() { "https" } else { "http" };
    Ok((
        format!("{scheme}://{}/-/healthy", listen.local()),
        web,
        credentials,
    ))
}

fn ask_healthy(url: &str, web: &WebConfig, credentials: Credentials) -> ExitCode {
    let check = async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .danger_accept_invalid_certs(web.tls_enabled())
            .build()?;
        let mut req = client.get(url);
        let have_credentials = credentials.is_some();
        if let Some((user, password)) = credentials {
            req = req.basic_auth(user, Some(password));
        }
        let resp = req.send().await?;
        // Without a password, being refused one is proof enough of life.
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED
            && web.auth_enabled()
            && !have_credentials
        {
            return Ok(resp);
        }
        resp.error_for_status()
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(check).map_err(|e| e.to_string()));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{url}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    cli: Cli,
    poll_runtime: tokio::runtime::Handle,
    systemd: Option<Vec<std::net::TcpListener>>,
) -> anyhow::Result<()> {
    let (config, source, _demo) = if cli.demo {
        let (config, demo) = start_demo().await?;
        (config, Source::Builtin, Some(demo))
    } else {
        let path = cli
            .config_file
            .context("give --config.file=FILE, or --demo to try it with simulated devices")?;
        let config = Config::load(&path, KINDS)?;
        (config, Source::File(path), None)
    };
    let web = load_web_config(cli.web_config_file.as_deref())?;
    let app = App::with_poll_runtime(source, KINDS, poll_runtime);
    // The flag wins over the file; reloads keep the shard chosen here.
    app.set_shard(cli.shard.or(config.shard).unwrap_or_default());
    let summary = app.apply(&config).await;
    info!(targets = summary.added.len(), "configuration loaded");

    let sockets = match systemd {
        Some(sockets) => sockets
            .into_iter()
            .map(tokio::net::TcpListener::from_std)
            .collect::<std::io::Result<Vec<_>>>()?,
        None => {
            let addrs = if cli.listen.is_empty() {
                vec![ListenAddr::from(config.listen)]
            } else {
                cli.listen.clone()
            };
            let mut sockets = Vec::new();
            for addr in addrs {
                let bound = addr
                    .bind()
                    .with_context(|| format!("cannot listen on {addr}"))?;
                sockets.extend(bound);
            }
            sockets
        }
    };
    let mut listeners = Vec::with_capacity(sockets.len());
    for socket in sockets {
        info!(
            address = %socket.local_addr()?,
            systemd = cli.systemd_socket,
            tls = web.tls_enabled(),
            basic_auth = web.auth_enabled(),
            "serving {}", cli.telemetry_path
        );
        listeners.push(web::Listener::new(socket, &web)?);
    }
    let limits = web::Limits {
        max_connections: cli.max_connections as usize,
        ..web::Limits::default()
    };
    tokio::spawn(reload_on_sighup(app.clone()));
    web::serve_with(
        web::Listeners::new(listeners),
        web::protect(
            server::router_with(
                app.clone(),
                &server::Options {
                    telemetry_path: cli.telemetry_path.clone(),
                    exporter_metrics: !cli.disable_exporter_metrics,
                    max_requests: cli.max_requests,
                },
            ),
            &web,
        ),
        &limits,
        shutdown_signal(),
    )
    .await?;
    info!("shutting down");
    if tokio::time::timeout(Duration::from_secs(3), app.shutdown())
        .await
        .is_err()
    {
        warn!("pollers did not stop in time");
    }
    Ok(())
}

/// What keeps the demo simulators running.
#[cfg(feature = "demo")]
type DemoGuard = fleet_exporter::demo::Demo;
#[cfg(not(feature = "demo"))]
type DemoGuard = ();

#[cfg(feature = "demo")]
async fn start_demo() -> anyhow::Result<(Config, DemoGuard)> {
    let demo = fleet_exporter::demo::Demo::start()
        .await
        .context("starting the demo simulators")?;
    Ok((demo.config()?, demo))
}

#[cfg(not(feature = "demo"))]
async fn start_demo() -> anyhow::Result<(Config, DemoGuard)> {
    anyhow::bail!("--demo: this build has no simulators (built without the `demo` feature)")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn reload_on_sighup(app: std::sync::Arc<App>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            info!("SIGHUP: reloading configuration");
            // Failures are logged and exported by the reload itself.
            let _ = app.reload().await;
        }
    }
    #[cfg(not(unix))]
    let _ = app;
}
