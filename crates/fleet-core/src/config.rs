//! Configuration: file (TOML or YAML) plus `FLEET_EXPORTER__SECTION__KEY` environment overrides,
//! `${VAR}` expansion inside values, and `<key>_file` secrets. Everything is validated before
//! anything runs, so a reload can refuse a bad file and keep the old config.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::driver::{DriverFactory, Registry};
use crate::shard::Shard;
pub use crate::target::{Secret, TargetSpec};

pub const DEFAULT_LISTEN: &str = "0.0.0.0:9877";
const ENV_PREFIX: &str = "FLEET_EXPORTER";
/// Keys every target has; all others belong to the target's driver.
const COMMON_KEYS: [&str; 6] = ["name", "kind", "url", "interval", "timeout", "backoff_max"];
/// The largest config file read: generous (a 10,000-target file is about 1 MiB), yet a file
/// swapped for something huge cannot take the exporter's memory.
pub const CONFIG_FILE_MAX_BYTES: u64 = 16 << 20;
/// The largest `*_file` secret read: passwords, keys and tokens are far smaller.
pub const SECRET_FILE_MAX_BYTES: u64 = 64 << 10;
/// The longest target name, and the longest driver option string (user names, ids, device
/// lists): strings that become label values on every series of the target.
pub const LABEL_VALUE_MAX_BYTES: usize = 256;
/// The longest `url`.
const URL_MAX_BYTES: usize = 4096;
/// The longest reading and validating a configuration may take, at startup, in a check and on
/// a reload, before it is given up: a file on a hung network filesystem blocks its reader in the
/// kernel, where no timeout of a read reaches it, so the reader is abandoned instead.
pub const READ_DEADLINE: Duration = Duration::from_secs(30);
/// A target's poll interval when neither it nor `[defaults]` sets one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// A poll's deadline where neither the target nor `[defaults]` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this share of a target's interval is the timeout it inherits: a poll that ran into
/// the next one's start would only delay it.
const INHERITED_TIMEOUT_SHARE: f64 = 0.9;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn from_message(msg: impl Into<String>) -> Self {
        ConfigError(msg.into())
    }

    fn at(path: &str, msg: impl fmt::Display) -> Self {
        ConfigError(format!("{path}: {msg}"))
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `server.shard`: the share of the targets this replica polls, when the file names one
    /// (`--shard` wins over it; read at startup, so a reload keeps the running shard).
    pub shard: Option<Shard>,
    pub targets: Vec<TargetConfig>,
    /// What a config loaded from a file was made of, so a reload can tell an unchanged one
    /// without parsing it again.
    inputs: Option<Arc<Inputs>>,
}

/// Everything a loaded config was made of: the file's text, the environment (overrides and
/// `${VAR}`), and the contents of every secret file it read. Equal inputs parse into equal
/// targets, so a reload whose inputs are unchanged need not parse at all. (Files a driver reads
/// itself, such as a device list file, are the driver's to watch, at its polls.)
#[derive(Clone, PartialEq)]
pub struct Inputs {
    path: PathBuf,
    text: String,
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    secrets: Vec<(PathBuf, String)>,
}

impl fmt::Debug for Inputs {
    // Secrets are never shown; nor is the text, which may hold them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inputs")
            .field("path", &self.path)
            .field(
                "secret_files",
                &self.secrets.iter().map(|s| &s.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Inputs {
    fn env_now() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let mut env: Vec<_> = std::env::vars_os().collect();
        env.sort();
        env
    }

    /// True when the file, the environment and every secret file read as they did: the
    /// config would parse into the same targets. Blocking file reads: call off the runtime.
    pub fn unchanged(&self) -> bool {
        let same_file = |path: &Path, max, seen: &str| {
            read_regular_file(path, max).is_ok_and(|now| now == seen)
        };
        same_file(&self.path, CONFIG_FILE_MAX_BYTES, &self.text)
            && self.env == Inputs::env_now()
            && self
                .secrets
                .iter()
                .all(|(path, seen)| same_file(path, SECRET_FILE_MAX_BYTES, seen))
    }
}

/// One target, ready to poll.
#[derive(Clone)]
pub struct TargetConfig {
    pub spec: Arc<TargetSpec>,
    pub factory: DriverFactory,
}

impl fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec.fmt(f)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    defaults: RawDefaults,
    /// Read one by one ([`RawTarget::read`]), so errors name the target rather than its index.
    #[serde(default)]
    targets: Vec<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    shard: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    interval: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    backoff_max: Option<Duration>,
}

/// A target's name, read before the rest: every later error about the target is reported
/// under it, and until it is known only the target's index can say which one is meant.
#[derive(Deserialize)]
#[serde(expecting = "a target table")]
struct TargetName {
    name: String,
}

/// One `[[targets]]` table. The common keys ([`COMMON_KEYS`]) are fields; every other key is
/// the driver's, collected into `options`, so the driver never sees a common key.
#[derive(Deserialize)]
#[serde(expecting = "a target table")]
struct RawTarget {
    name: String,
    kind: String,
    /// Checked after `kind`: a file naming an unknown kind hears about that first, whatever
    /// else it lacks.
    url: Option<String>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    interval: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    backoff_max: Option<Duration>,
    #[serde(flatten)]
    options: Map<String, Value>,
}

impl RawTarget {
    /// Reads the `i`th target, naming it (or, without a usable name, its index) on error.
    fn read(i: usize, table: Value) -> Result<RawTarget, ConfigError> {
        let index = format!("targets[{i}]");
        let TargetName { name } = deserialize_at(&index, &table)?;
        if name.len() > LABEL_VALUE_MAX_BYTES {
            // Not quoted back: the name may be megabytes.
            return Err(ConfigError::at(
                &format!("{index}.name"),
                too_long(name.len(), LABEL_VALUE_MAX_BYTES, "a target name"),
            ));
        }
        if name.trim().is_empty() {
            return Err(ConfigError::at(
                &format!("{index}.name"),
                "must be a non-empty string",
            ));
        }
        deserialize_at(&format!("target {name:?}"), table)
    }
}

/// Deserializes `value`, prefixing an error with `at` and the key it concerns: `at.key: why`.
fn deserialize_at<'de, T: Deserialize<'de>>(
    at: &str,
    value: impl serde::Deserializer<'de, Error = serde_json::Error>,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        match (at.is_empty(), key.as_str()) {
            (true, ".") => ConfigError(inner.to_string()),
            (true, key) => ConfigError::at(key, inner),
            (false, ".") => ConfigError::at(at, inner),
            (false, key) => ConfigError::at(&format!("{at}.{key}"), inner),
        }
    })
}

/// The file formats a config may be written in.
#[derive(Debug, Clone, Copy)]
pub enum FileFormat {
    Toml,
    Yaml,
}

impl FileFormat {
    fn of(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => FileFormat::Yaml,
            _ => FileFormat::Toml,
        }
    }

    fn to_config(self) -> config::FileFormat {
        match self {
            FileFormat::Toml => config::FileFormat::Toml,
            FileFormat::Yaml => config::FileFormat::Yaml,
        }
    }
}

impl Config {
    /// Loads and validates a config file, with environment overrides applied.
    pub fn load(path: &Path, kinds: Registry) -> Result<Config, ConfigError> {
        let text = read_regular_file(path, CONFIG_FILE_MAX_BYTES)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let env = Inputs::env_now();
        let mut secrets = Vec::new();
        let mut config =
            Self::parse_reading(&text, FileFormat::of(path), &base, kinds, &mut secrets)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        config.inputs = Some(Arc::new(Inputs {
            path: path.to_path_buf(),
            text,
            env,
            secrets,
        }));
        Ok(config)
    }

    /// [`Config::load`] under `deadline` (see [`within`]): a config or secret file that never
    /// answers fails the load, naming the config file, instead of hanging the caller.
    pub fn load_within(
        path: &Path,
        kinds: Registry,
        deadline: Duration,
    ) -> Result<Config, ConfigError> {
        let owned = path.to_path_buf();
        within(deadline, move || Config::load(&owned, kinds))
            .unwrap_or_else(|e| Err(ConfigError(format!("cannot read {}: {e}", path.display()))))
    }

    /// What the config was made of, when it was loaded from a file.
    pub fn inputs(&self) -> Option<&Arc<Inputs>> {
        self.inputs.as_ref()
    }

    /// Parses config text; relative `*_file` paths resolve against `base_dir`, and `kind` names
    /// one of `kinds`.
    pub fn parse(
        text: &str,
        format: FileFormat,
        base_dir: &Path,
        kinds: Registry,
    ) -> Result<Config, ConfigError> {
        Self::parse_reading(text, format, base_dir, kinds, &mut Vec::new())
    }

    /// [`Config::parse`], noting each secret file read and its contents in `secrets`.
    fn parse_reading(
        text: &str,
        format: FileFormat,
        base_dir: &Path,
        kinds: Registry,
        secrets: &mut Vec<(PathBuf, String)>,
    ) -> Result<Config, ConfigError> {
        let layered = config::Config::builder()
            .add_source(config::File::from_str(text, format.to_config()))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| ConfigError(e.to_string()))?;
        let mut tree: Value = layered
            .try_deserialize()
            .map_err(|e| ConfigError(e.to_string()))?;
        expand_env(&mut tree, "")?;
        let raw: RawConfig = deserialize_at("", tree)?;
        Self::validate(raw, base_dir, kinds, secrets)
    }

    fn validate(
        raw: RawConfig,
        base_dir: &Path,
        kinds: Registry,
        secrets: &mut Vec<(PathBuf, String)>,
    ) -> Result<Config, ConfigError> {
        let listen = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen
            .parse()
            .map_err(|e| ConfigError::at("server.listen", format!("{listen:?}: {e}")))?;
        let shard = match raw.server.shard.as_deref() {
            Some(shard) => Some(
                shard
                    .parse()
                    .map_err(|e| ConfigError::at("server.shard", e))?,
            ),
            None => None,
        };
        let defaults = &raw.defaults;
        let interval = defaults.interval.unwrap_or(DEFAULT_INTERVAL);
        let timeout = defaults.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let backoff_max = defaults.backoff_max.unwrap_or(Duration::from_secs(300));
        if defaults.timeout.is_some() {
            below_interval("defaults.timeout", timeout, interval)?;
        }

        let mut names = HashSet::new();
        let mut targets = Vec::with_capacity(raw.targets.len());
        for (i, table) in raw.targets.into_iter().enumerate() {
            let raw = RawTarget::read(i, table)?;
            let defaults = (interval, timeout, backoff_max);
            let target = configure(raw, defaults, base_dir, kinds, secrets)?;
            if !names.insert(target.spec.name.clone()) {
                return Err(ConfigError::at(
                    &format!("targets[{i}].name"),
                    format!("duplicate target name {:?}", target.spec.name),
                ));
            }
            targets.push(target);
        }
        Ok(Config {
            listen,
            shard,
            targets,
            inputs: None,
        })
    }
}

/// A timeout someone wrote at `key`, refused unless it is below the interval it polls at.
fn below_interval(
    key: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<Duration, ConfigError> {
    if timeout >= interval {
        return Err(ConfigError::at(
            key,
            format!("must be below the interval ({timeout:?} >= {interval:?})"),
        ));
    }
    Ok(timeout)
}

/// Checks a target against its kind and the defaults, reads its secret files, and has its
/// driver check the options.
fn configure(
    raw: RawTarget,
    (interval, timeout, backoff_max): (Duration, Duration, Duration),
    base_dir: &Path,
    kinds: Registry,
    secrets: &mut Vec<(PathBuf, String)>,
) -> Result<TargetConfig, ConfigError> {
    let RawTarget {
        name,
        kind: kind_name,
        url,
        interval: target_interval,
        timeout: target_timeout,
        backoff_max: target_backoff_max,
        options: mut table,
    } = raw;
    let path = format!("target {name:?}");
    let kind = kinds.iter().find(|k| k.name == kind_name).ok_or_else(|| {
        let known: Vec<_> = kinds.iter().map(|k| k.name).collect();
        ConfigError::at(
            &format!("{path}.kind"),
            format!("unknown kind {kind_name:?} (known: {})", known.join(", ")),
        )
    })?;
    let url = url.ok_or_else(|| ConfigError::at(&path, "missing field `url`"))?;
    if url.len() > URL_MAX_BYTES {
        return Err(ConfigError::at(
            &format!("{path}.url"),
            too_long(url.len(), URL_MAX_BYTES, "a URL"),
        ));
    }
    let url = parse_url(&url).map_err(|e| ConfigError::at(&format!("{path}.url"), e))?;
    let interval = target_interval.unwrap_or(interval);
    let backoff_max = target_backoff_max.unwrap_or(backoff_max);
    let timeout = match target_timeout {
        Some(timeout) => below_interval(&format!("{path}.timeout"), timeout, interval)?,
        // An inherited timeout is shortened to fit a target polled more often, as Prometheus
        // shortens a global scrape timeout for a job with a shorter interval: the user wrote
        // no timeout for this target, so there is no key of theirs to refuse.
        None => timeout.min(interval.mul_f64(INHERITED_TIMEOUT_SHARE)),
    };
    for key in kind.secret_keys {
        let file_key = format!("{key}_file");
        if let Some(file) = table.remove(&file_key) {
            let at = format!("{path}.{file_key}");
            if table.contains_key(*key) {
                return Err(ConfigError::at(
                    &at,
                    format!("set either `{key}` or `{file_key}`, not both"),
                ));
            }
            let Value::String(file) = file else {
                return Err(ConfigError::at(&at, "must be a path string"));
            };
            table.insert(
                key.to_string(),
                Value::String(
                    read_secret_file(base_dir, &file, secrets)
                        .map_err(|e| ConfigError::at(&at, e))?,
                ),
            );
        }
    }
    for (key, value) in &table {
        if !kind.secret_keys.contains(&key.as_str()) {
            check_label_strings(value, &format!("{path}.{key}"))?;
        }
    }
    debug_assert!(COMMON_KEYS.iter().all(|k| !table.contains_key(*k)));
    let spec = TargetSpec {
        name,
        kind: kind.name,
        url,
        interval,
        timeout,
        backoff_max: backoff_max.max(interval),
        options: table,
        config_dir: base_dir.to_path_buf(),
    };
    let factory = (kind.configure)(&spec).map_err(|e| ConfigError::at(&path, e))?;
    Ok(TargetConfig {
        spec: Arc::new(spec),
        factory,
    })
}

fn parse_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?}: scheme must be http or https"));
    }
    if url.host().is_none() {
        return Err(format!("{s:?} has no host"));
    }
    Ok(url)
}

/// Refuses a driver option string (at any depth) longer than a label value may be.
fn check_label_strings(v: &Value, at: &str) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.len() > LABEL_VALUE_MAX_BYTES => Err(ConfigError::at(
            at,
            too_long(s.len(), LABEL_VALUE_MAX_BYTES, "an option string"),
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_label_strings(item, &format!("{at}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, item)| check_label_strings(item, &format!("{at}.{k}"))),
        _ => Ok(()),
    }
}

/// Runs `read` on a thread of its own and waits at most `deadline` for its result. When the
/// deadline passes first, the thread is left behind: a read blocked in the kernel cannot be
/// cancelled, only abandoned, and it ends with the process.
pub fn within<T: Send + 'static>(
    deadline: Duration,
    read: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (done, result) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("config-read".into())
        .spawn(move || {
            let _ = done.send(read());
        })
        .map_err(|e| format!("cannot start a thread to read it: {e}"))?;
    result
        .recv_timeout(deadline)
        .map_err(|_| took_longer(deadline))
}

/// Why a read was given up: the same words at startup, in a check and on reload.
pub fn took_longer(deadline: Duration) -> String {
    format!(
        "reading took longer than {}s; is it on a filesystem that does not answer?",
        deadline.as_secs()
    )
}

fn too_long(len: usize, max: usize, what: &str) -> String {
    format!("{len} bytes long; {what} may be at most {max} bytes")
}

/// Reads a config or secret file that must be a regular file of at most `max_bytes`. The open
/// does not block (a named pipe with no writer would otherwise hang it forever), and the kind
/// and size are checked on the opened file before a byte is read: a FIFO, a device
/// (`/dev/zero` never ends), a directory or an oversized file is refused with the reason.
pub fn read_regular_file(path: &Path, max_bytes: u64) -> Result<String, String> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!(
            "{}, not a regular file",
            describe(&meta.file_type())
        ));
    }
    let over = |len: u64| format!("{len} bytes, over the limit of {}", bytes(max_bytes));
    if meta.len() > max_bytes {
        return Err(over(meta.len()));
    }
    // The file may grow between the check and the read: read one byte past the limit at most.
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > max_bytes {
        return Err(over(buf.len() as u64));
    }
    String::from_utf8(buf).map_err(|_| "not UTF-8 text".to_string())
}

fn describe(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

fn read_secret_file(
    base_dir: &Path,
    file: &str,
    read: &mut Vec<(PathBuf, String)>,
) -> Result<String, String> {
    let path = base_dir.join(file);
    let text = read_regular_file(&path, SECRET_FILE_MAX_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // Secret files conventionally end with a newline that is not part of the secret.
    let secret = text.trim_end_matches(['\r', '\n']).to_string();
    read.push((path, text));
    Ok(secret)
}

/// `deserialize_with` for drivers' duration options, read like every duration in the config.
pub fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// [`deserialize_duration`] for a key that may be left out (with `#[serde(default)]`).
fn deserialize_optional_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    deserialize_duration(d).map(Some)
}

/// Parses a duration as humantime writes one (`"30s"`, `"1m30s"`, `"500ms"`, `"2h"`, `"1d"`,
/// `"1h 30m"`), or a bare number of seconds (`15`, `2.5`, `"15"`). Zero is refused: a zero
/// interval or timeout would spin or fail every poll.
pub fn parse_duration(v: &Value) -> Result<Duration, String> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("expected a duration like \"30s\", got {other}")),
    };
    let bad = |why: &dyn fmt::Display| {
        format!("expected a duration like \"30s\", \"5m\" or \"500ms\", got {s:?}: {why}")
    };
    // humantime insists on a unit; a bare number has always meant seconds here.
    let d = match s.parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs).map_err(|e| bad(&e))?,
        Err(_) => humantime::parse_duration(&s).map_err(|e| bad(&e))?,
    };
    if d.is_zero() {
        return Err(format!("duration {s:?} must be above zero"));
    }
    Ok(d)
}

/// Replaces `${VAR}` in every string value with the environment variable's value.
fn expand_env(v: &mut Value, path: &str) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..]
                    .find('}')
                    .ok_or_else(|| ConfigError::at(path, "unclosed `${` in value"))?;
                let var = &rest[start + 2..start + end];
                let value = std::env::var(var).map_err(|_| {
                    ConfigError::at(path, format!("environment variable {var} is not set"))
                })?;
                out.push_str(&value);
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                // A target is named as every later error about it names it.
                let at = match item.get("name").and_then(Value::as_str) {
                    Some(name) if path == "targets" => format!("target {name:?}"),
                    _ => format!("{path}[{i}]"),
                };
                expand_env(item, &at)?;
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                expand_env(item, &p)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Where the config came from, for reloads.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    /// Built in (demo mode): nothing to reload.
    Builtin,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        let d = |s: &str| parse_duration(&Value::String(s.into()));
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(
            parse_duration(&serde_json::json!(15)),
            Ok(Duration::from_secs(15))
        );
        assert!(d("0s").is_err());
        assert!(d("10 parsecs").is_err());
        assert!(d("-5s").is_err());
        assert!(d("").is_err());
        // A sum past Duration::MAX once panicked.
        assert!(d("18446744073709551615s18446744073709551615s").is_err());
    }

    #[test]
    fn durations_in_every_accepted_form() {
        let d = |v: Value| parse_duration(&v);
        assert_eq!(d(json!("1d")), Ok(Duration::from_secs(86400)));
        assert_eq!(d(json!("  45s \n")), Ok(Duration::from_secs(45)));
        assert_eq!(d(json!("15")), Ok(Duration::from_secs(15)));
        assert_eq!(d(json!(" 2.5 ")), Ok(Duration::from_millis(2500)));
        assert_eq!(d(json!(0.25)), Ok(Duration::from_millis(250)));
        assert_eq!(d(json!("1h 30m")), Ok(Duration::from_secs(5400)));
        for refused in [
            json!(0),
            json!("0"),
            json!(-1),
            json!("-1"),
            json!("   "),
            json!("1e400"),
            json!("18446744073709551616"),
            json!("99999999999999999999d"),
            json!(true),
            json!(["30s"]),
        ] {
            assert!(d(refused.clone()).is_err(), "{refused} was accepted");
        }
        let e = d(json!("10 parsecs")).unwrap_err();
        assert!(e.contains("\"10 parsecs\""), "{e}");
    }
}
