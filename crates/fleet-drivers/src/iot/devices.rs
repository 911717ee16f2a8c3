//! The target's device list: `devices` from the config, then the lines of `devices_file`.
//!
//! A reload that leaves the config text unchanged keeps the target's driver, so an edited
//! `devices_file` is picked up by the driver itself, at its next poll. A file that cannot be read
//! or lists nothing keeps the last list: a half-written file must not empty a fleet.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tracing::warn;

/// The device list: `devices` then the file's lines, duplicates dropped, order kept.
pub(super) fn device_list(inline: &[String], file: Option<&Path>) -> Result<Vec<String>, String> {
    let mut all: Vec<String> = inline.iter().map(|d| d.trim().to_string()).collect();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("devices_file: cannot read {}: {e}", path.display()))?;
        all.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default().trim().to_string()),
        );
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|d| !d.is_empty() && seen.insert(d.clone()));
    Ok(all)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The devices a driver asks, and the file they came from.
pub(super) struct DeviceList {
    devices: Arc<[String]>,
    file: Option<PathBuf>,
    modified: Option<SystemTime>,
}

impl DeviceList {
    pub(super) fn new(devices: Arc<[String]>, file: Option<PathBuf>) -> Self {
        let modified = file.as_deref().and_then(modified);
        DeviceList {
            devices,
            file,
            modified,
        }
    }

    pub(super) fn devices(&self) -> &[String] {
        &self.devices
    }

    /// Reads the file again when it changed since the last read; true when the list changed.
    pub(super) fn reread(&mut self, inline: &[String], target: &str) -> bool {
        let Some(path) = self.file.as_deref() else {
            return false;
        };
        let now = modified(path);
        if now == self.modified {
            return false;
        }
        self.modified = now;
        match device_list(inline, Some(path)) {
            Ok(list) if !list.is_empty() => {
                self.devices = list.into();
                true
            }
            Ok(_) => {
                warn!(
                    target_name = target,
                    "devices_file lists no devices; keeping the last list"
                );
                false
            }
            Err(e) => {
                warn!(target_name = target, error = %e, "keeping the last device list");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists_merge_dedupe_and_skip_comments() {
        let dir = std::env::temp_dir().join(format!("iot-devices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("devices.txt");
        std::fs::write(&file, "# fleet\n111\n\n222  # spare\n111\r\n").unwrap();
        let list = device_list(&["333".into(), "111".into()], Some(&file)).unwrap();
        assert_eq!(list, ["333", "111", "222"]);
        let e = device_list(&[], Some(&dir.join("missing"))).unwrap_err();
        assert!(e.starts_with("devices_file: cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
