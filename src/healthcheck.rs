//! `--healthcheck`: asks a running exporter's `/-/healthy` and exits 0 when it answers, so a
//! container needs no shell tools for its `HEALTHCHECK`.
//!
//! Policy:
//! - **It asks where the server listens.** Given any of the flags that say where that is
//!   (`--web.listen-address`, `--config.file`, `--web.config.file`), it uses those and nothing
//!   else. Given none, and when PID 1 runs this same executable (the container case: the image's
//!   `HEALTHCHECK` cannot repeat the flags an operator gave `docker run`), it reads PID 1's
//!   command line and uses its flags, relative paths taken from PID 1's working directory.
//!   Otherwise it asks the default address. An operator never repeats a flag for the check.
//! - **The address**: the first `--web.listen-address`, else the config file's `server.listen`
//!   (loopback for `:PORT` and unspecified addresses). The config is read under the same
//!   deadline as at startup, so a file on a hung filesystem fails the check instead of hanging it.
//! - **TLS** when the web config has it, without verifying the certificate: it checks liveness,
//!   on loopback. A required client certificate makes it fail (use a TCP check then).
//! - **Basic auth** from the environment: a user name and a file holding the password, never the
//!   password itself, like every other secret. With them only a 200 counts; without them a 401
//!   counts as alive, since it proves the server answers.
//! - A failure says which address it asked and where that came from, never a credential.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use fleet_core::config::{read_regular_file, Config, READ_DEADLINE, SECRET_FILE_MAX_BYTES};
use fleet_drivers::KINDS;
use fleet_exporter::web::{ListenAddr, WebConfig};

/// Where `--healthcheck` takes basic-auth credentials from.
pub(crate) const USERNAME_ENV: &str = "FLEET_EXPORTER_HEALTHCHECK_USERNAME";
pub(crate) const PASSWORD_FILE_ENV: &str = "FLEET_EXPORTER_HEALTHCHECK_PASSWORD_FILE";

/// The flags of a server command line that say where and how it serves.
#[derive(Debug, Default)]
pub(crate) struct Server {
    pub(crate) listen: Vec<ListenAddr>,
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) web_config_file: Option<PathBuf>,
    pub(crate) systemd_socket: bool,
}

impl Server {
    fn says_where(&self) -> bool {
        !self.listen.is_empty() || self.config_file.is_some() || self.web_config_file.is_some()
    }
}

/// Which flags the check followed, for its failure message.
enum Origin {
    Given,
    Pid1,
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Given => "the flags given",
            Origin::Pid1 => "the flags of PID 1, this exporter",
            Origin::Default => {
                "the default address: PID 1 is not this exporter, so give --healthcheck the \
                 server's flags"
            }
        })
    }
}

/// Runs the check. `parse` reads a server command line (argv\[0\] first) into its flags.
pub(crate) fn run(
    given: Server,
    parse: impl FnOnce(Vec<OsString>) -> Result<Server, clap::Error>,
) -> ExitCode {
    let (server, origin) = match choose(given, parse) {
        Ok(chosen) => chosen,
        Err(e) => return fail(&format!("{e:#}")),
    };
    match target(&server) {
        Ok((url, web, credentials)) => match ask_healthy(&url, &web, credentials) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("{url} (from {origin}): {e}")),
        },
        Err(e) => fail(&format!("{e:#} (from {origin})")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("fleet-exporter --healthcheck: {message}");
    ExitCode::FAILURE
}

fn choose(
    given: Server,
    parse: impl FnOnce(Vec<OsString>) -> Result<Server, clap::Error>,
) -> anyhow::Result<(Server, Origin)> {
    if given.says_where() {
        return Ok((given, Origin::Given));
    }
    let Some(args) = pid1_command_line() else {
        return Ok((given, Origin::Default));
    };
    let mut server = parse(args).context("reading PID 1's command line")?;
    // PID 1's relative paths are relative to its working directory, not ours.
    let cwd = Path::new("/proc/1/cwd");
    for path in [&mut server.config_file, &mut server.web_config_file]
        .into_iter()
        .flatten()
    {
        if path.is_relative() {
            *path = cwd.join(&*path);
        }
    }
    Ok((server, Origin::Pid1))
}

/// PID 1's arguments when PID 1 runs this executable and is not this process: the same file
/// (device and inode), so a different program named `fleet-exporter` never counts.
#[cfg(target_os = "linux")]
fn pid1_command_line() -> Option<Vec<OsString>> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    if std::process::id() == 1 {
        return None;
    }
    let (pid1, own) = (
        std::fs::metadata("/proc/1/exe").ok()?,
        std::fs::metadata("/proc/self/exe").ok()?,
    );
    if (pid1.dev(), pid1.ino()) != (own.dev(), own.ino()) {
        return None;
    }
    let raw = std::fs::read("/proc/1/cmdline").ok()?;
    let args: Vec<OsString> = raw
        .split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| std::ffi::OsStr::from_bytes(arg).to_os_string())
        .collect();
    (!args.is_empty()).then_some(args)
}

#[cfg(not(target_os = "linux"))]
fn pid1_command_line() -> Option<Vec<OsString>> {
    None
}

type Credentials = Option<(String, String)>;

fn target(server: &Server) -> anyhow::Result<(String, WebConfig, Credentials)> {
    anyhow::ensure!(
        !(server.systemd_socket && server.listen.is_empty()),
        "the server serves on the sockets systemd passes it; give --web.listen-address"
    );
    let web = crate::load_web_config(server.web_config_file.as_deref())?;
    let listen = match (server.listen.first(), &server.config_file) {
        (Some(first), _) => *first,
        (None, Some(path)) => {
            ListenAddr::from(Config::load_within(path, KINDS, READ_DEADLINE)?.listen)
        }
        (None, None) => fleet_core::config::DEFAULT_LISTEN
            .parse()
            .expect("valid default"),
    };
    let credentials = match (
        std::env::var_os(USERNAME_ENV),
        std::env::var_os(PASSWORD_FILE_ENV),
    ) {
        (None, None) => None,
        (Some(user), Some(file)) => {
            // Read like every secret file: a regular file of sane size, never a pipe that hangs.
            let password =
                read_regular_file(Path::new(&file), SECRET_FILE_MAX_BYTES).map_err(|e| {
                    anyhow::anyhow!("{PASSWORD_FILE_ENV}={}: {e}", file.to_string_lossy())
                })?;
            let user = user
                .into_string()
                .map_err(|_| anyhow::anyhow!("{USERNAME_ENV} is not UTF-8"))?;
            Some((user, password.trim_end_matches(['\r', '\n']).to_string()))
        }
        _ => anyhow::bail!("give both {USERNAME_ENV} and {PASSWORD_FILE_ENV}"),
    };
    let scheme = if web.tls_enabled() { "https" } else { "http" };
    Ok((
        format!("{scheme}://{}/-/healthy", listen.local()),
        web,
        credentials,
    ))
}

fn ask_healthy(url: &str, web: &WebConfig, credentials: Credentials) -> Result<(), String> {
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
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(check)
        .map(drop)
        // With its causes: "connection refused" says more than "error sending request".
        .map_err(|e| format!("{:#}", anyhow::Error::from(e)))
}
