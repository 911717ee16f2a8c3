//! What a configured target is, as drivers see it: its spec and the secrets in it.
//!
//! Both the config loader (which builds specs) and the driver contract (which hands them to
//! drivers) use these, so they live apart from either.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

/// What a target is, as configured. Two equal specs poll the same device the same way, which is
/// how a reload decides which pollers to keep.
#[derive(Clone, PartialEq)]
pub struct TargetSpec {
    pub name: String,
    pub kind: &'static str,
    pub url: Url,
    pub interval: Duration,
    pub timeout: Duration,
    /// The longest wait between polls while a target keeps failing.
    pub backoff_max: Duration,
    /// Driver options, with `${VAR}` expanded and `<key>_file` secrets read in.
    pub options: Map<String, Value>,
    /// The config file's directory: relative paths in driver options resolve against it.
    pub config_dir: PathBuf,
}

impl fmt::Debug for TargetSpec {
    // Options hold resolved secrets: only their keys are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url.as_str())
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TargetSpec {
    /// Deserializes the driver's options, naming the target and key on error.
    pub fn driver_options<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(Value::Object(self.options.clone())).map_err(|e| e.to_string())
    }
}

/// A string that must never be shown: `Debug` and `Display` print a placeholder.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
