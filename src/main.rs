use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing::{debug, error, info, warn};

use fleet_core::app::App;
use fleet_core::config::{Config, Source};
use fleet_drivers::KINDS;
use fleet_exporter::web::WebConfig;
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
    /// Address to serve /metrics on (overrides `server.listen`).
    #[arg(long = "web.listen-address", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Web config file (exporter-toolkit format): TLS and basic auth for every endpoint.
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config_file: Option<PathBuf>,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", default_value = "/metrics", value_parser = telemetry_path)]
    telemetry_path: String,
    /// Leave out the exporter's own process and HTTP series.
    #[arg(long = "web.disable-exporter-metrics")]
    disable_exporter_metrics: bool,
    /// Log level: error, warn, info, debug, trace, or a tracing filter such as
    /// `info,fleet_drivers=debug`.
    #[arg(long = "log.level", default_value = "info", value_parser = logging::parse_level)]
    log_level: String,
    /// Log format on stderr.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    log_format: LogFormat,
    /// Ask a running exporter's /-/healthy (at --web.listen-address) and exit 0 when it answers:
    /// a container health check that needs no shell tools in the image. With --web.config.file it
    /// speaks TLS (without verifying the certificate: it checks liveness, on loopback) and counts
    /// a 401 as alive, since it has no password; a required client certificate makes it fail.
    #[arg(long, conflicts_with_all = ["demo", "config_check"])]
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
        let web = match load_web_config(cli.web_config_file.as_deref()) {
            Ok(web) => web,
            Err(e) => {
                eprintln!("{e:#}");
                return ExitCode::FAILURE;
            }
        };
        return healthcheck(cli.listen, &web);
    }
    // Pollers get threads of their own; see `App::with_poll_runtime`.
    let (runtime, poll_runtime) =
        match new_runtime("fleet-serve").and_then(|r| Ok((r, new_runtime("fleet-poll")?))) {
            Ok(runtimes) => runtimes,
            Err(e) => {
                eprintln!("cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(run(cli, poll_runtime.handle().clone())) {
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

fn healthcheck(listen: Option<SocketAddr>, web: &WebConfig) -> ExitCode {
    let mut addr = listen.unwrap_or_else(|| {
        fleet_core::config::DEFAULT_LISTEN
            .parse()
            .expect("valid default")
    });
    if addr.ip().is_unspecified() {
        addr.set_ip([127, 0, 0, 1].into());
    }
    let scheme = if web.tls_enabled() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}/-/healthy");
    let check = async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .danger_accept_invalid_certs(web.tls_enabled())
            .build()?;
        let resp = client.get(&url).send().await?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED && web.auth_enabled() {
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

async fn run(cli: Cli, poll_runtime: tokio::runtime::Handle) -> anyhow::Result<()> {
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
    let listen = cli.listen.unwrap_or(config.listen);
    let app = App::with_poll_runtime(source, KINDS, poll_runtime);
    let summary = app.apply(&config).await;
    info!(targets = summary.added.len(), "configuration loaded");

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    info!(
        address = %listener.local_addr()?,
        tls = web.tls_enabled(),
        basic_auth = web.auth_enabled(),
        "serving /metrics"
    );
    tokio::spawn(reload_on_sighup(app.clone()));
    web::serve(
        web::Listener::new(listener, &web)?,
        web::protect(
            server::router_with(
                app.clone(),
                &server::Options {
                    telemetry_path: cli.telemetry_path.clone(),
                    exporter_metrics: !cli.disable_exporter_metrics,
                },
            ),
            &web,
        ),
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
