use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use tracing::{error, info, warn};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

use fleet_core::app::App;
use fleet_core::config::{Config, Source};
use fleet_drivers::KINDS;
use fleet_exporter::web::WebConfig;
use fleet_exporter::{server, web};

/// Prometheus exporter for iKuai routers, Komari monitors, OpenVox VoIP gateways and IoT SIM
/// devices.
#[derive(Parser, Debug)]
#[command(version, about)]
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
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Ask a running exporter's /-/healthy (at --web.listen-address) and exit 0 when it answers:
    /// a container health check that needs no shell tools in the image. With --web.config.file it
    /// speaks TLS (without verifying the certificate: it checks liveness, on loopback) and counts
    /// a 401 as alive, since it has no password; a required client certificate makes it fail.
    #[arg(long, conflicts_with_all = ["demo", "config_check"])]
    healthcheck: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    fleet_exporter::allocator::pin_large_block_thresholds();
    let cli = Cli::parse();
    init_logging(&cli);
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
            error!("{e:#}");
            ExitCode::FAILURE
        }
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

/// Libraries whose trace output prints requests verbatim, `Authorization` headers included.
const VERBATIM_TRACERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

fn init_logging(cli: &Cli) {
    let mut filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Trace level must not leak a credential, so those libraries stop at debug.
    if filter.max_level_hint() == Some(LevelFilter::TRACE) {
        for target in VERBATIM_TRACERS {
            filter = filter.add_directive(format!("{target}=debug").parse().expect("valid"));
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
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
        web::protect(server::router(app.clone()), &web),
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
