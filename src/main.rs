use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing::{debug, error, info, warn};

use fleet_core::app::App;
use fleet_core::config::{Config, Source, READ_DEADLINE};
use fleet_drivers::KINDS;
use fleet_exporter::web::{ListenAddr, WebConfig};
use fleet_exporter::{server, web};

mod fdlimit;
mod healthcheck;
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
    /// that needs no shell tools in the image. It asks the first --web.listen-address, else
    /// --config.file's `server.listen` (loopback for `:PORT` and unspecified addresses). Given
    /// none of --web.listen-address, --config.file, --web.config.file, it takes them from PID 1
    /// when PID 1 is this exporter (in a container). With --web.config.file it speaks TLS
    /// (without verifying the certificate: it checks liveness, on loopback); basic auth comes
    /// from FLEET_EXPORTER_HEALTHCHECK_USERNAME and FLEET_EXPORTER_HEALTHCHECK_PASSWORD_FILE, and
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
        return match Config::load_within(path, KINDS, READ_DEADLINE) {
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
        return healthcheck::run(cli.server(), |args| {
            Cli::try_parse_from(args).map(|pid1| pid1.server())
        });
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
    fleet_exporter::allocator::release_free_pages_every(
        fleet_exporter::allocator::RELEASE_INTERVAL,
    );
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

impl Cli {
    /// The flags that say where and how it serves, for `--healthcheck`.
    fn server(self) -> healthcheck::Server {
        healthcheck::Server {
            listen: self.listen,
            config_file: self.config_file,
            web_config_file: self.web_config_file,
            systemd_socket: self.systemd_socket,
        }
    }
}

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

/// The web config, read under the same deadline as the config (`fleet_core::config::within`).
fn load_web_config(path: Option<&std::path::Path>) -> anyhow::Result<WebConfig> {
    let Some(path) = path else {
        return Ok(WebConfig::default());
    };
    let owned = path.to_path_buf();
    let loaded = fleet_core::config::within(READ_DEADLINE, move || WebConfig::load(&owned))
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    loaded.context("invalid web configuration")
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
        // Off the runtime's threads, under the reload's deadline: a config or secret file on a
        // hung filesystem ends startup with an error instead of hanging it.
        let load = path.clone();
        let config =
            tokio::task::spawn_blocking(move || Config::load_within(&load, KINDS, READ_DEADLINE))
                .await??;
        (config, Source::File(path), None)
    };
    let web_file = cli.web_config_file.clone();
    let web = tokio::task::spawn_blocking(move || load_web_config(web_file.as_deref())).await??;
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
