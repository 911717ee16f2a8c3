//! Build facts for `--version`, in the shape the Prometheus binaries print: when the binary was
//! built and by which compiler. `SOURCE_DATE_EPOCH` pins the date for reproducible builds.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=FLEET_EXPORTER_REVISION");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    println!(
        "cargo:rustc-env=FLEET_EXPORTER_BUILD_DATE={}",
        utc_date(epoch)
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".into(), |v| v.trim().to_string());
    println!("cargo:rustc-env=FLEET_EXPORTER_RUSTC={version}");
    // The revision the container build passes in; the core reads the same variable for
    // `fleet_exporter_build_info`.
    let revision = std::env::var("FLEET_EXPORTER_REVISION").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=FLEET_EXPORTER_BUILD_REVISION={revision}");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=FLEET_EXPORTER_TARGET={target}");
}

/// `YYYYMMDD-HH:MM:SS` in UTC, as Prometheus' build date reads.
fn utc_date(epoch: u64) -> String {
    let (days, secs) = (epoch / 86_400, epoch % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
