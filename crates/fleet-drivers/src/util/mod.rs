//! What the drivers share: HTTP plumbing, lenient readers, the section tally, the cached-answer
//! refresh, the re-login budget, envelope errors and small helpers.

mod cached;
mod errors;
pub mod http;
pub mod lenient;
mod limits;
mod relogin;
mod sections;

pub(crate) use self::cached::Cached;
pub(crate) use self::errors::{envelope_detail, envelope_error, with_context};
pub(crate) use self::limits::{
    check_max_rows, check_series, count_folded, default_max_series, LabelFold, RowCut,
    DEFAULT_MAX_LABEL_VALUES, FOLDED,
};
pub(crate) use self::relogin::ReloginBudget;
pub(crate) use self::sections::{OnFatal, Policy, Sections};

/// Lowercase hex of a text's MD5, the password hash several device logins expect.
pub(crate) fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What drivers' fixture tests share.
#[cfg(test)]
pub(crate) mod testing {
    use fleet_core::config::{Config, FileFormat, TargetSpec};
    use fleet_core::exposition::{render, Format};
    use fleet_core::snapshot::SnapshotBuilder;

    /// The text exposition of the samples `fill` adds for `target`.
    pub(crate) fn exposition(target: &str, fill: impl FnOnce(&mut SnapshotBuilder)) -> String {
        let mut b = SnapshotBuilder::new(Some(target));
        fill(&mut b);
        String::from_utf8(render(Format::Text, [&b.finish()])).expect("UTF-8 exposition")
    }

    /// A saved device answer from `fixtures/<kind>/<name>` at the workspace root.
    pub(crate) fn fixture(kind: &str, name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../fixtures/{kind}/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Whether `text` has exactly this line.
    pub(crate) fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    /// The `Debug` text of a one-target config of `kind` with these option lines, and the
    /// target's spec, for redaction checks.
    pub(crate) fn config_debug(kind: &str, options: &str) -> (String, TargetSpec) {
        let text = format!(
            "[[targets]]\nname = \"t\"\nkind = \"{kind}\"\nurl = \"https://d.example\"\n{options}\n"
        );
        let config = Config::parse(
            &text,
            FileFormat::Toml,
            std::path::Path::new("."),
            crate::KINDS,
        )
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let spec = (*config.targets[0].spec).clone();
        (format!("{config:?}"), spec)
    }

    /// Fails when `debug` shows `secret` or the MD5 a device login derives from it.
    pub(crate) fn assert_redacted(debug: &str, secret: &str) {
        for form in [secret.to_string(), super::md5_hex(secret)] {
            assert!(!debug.contains(&form), "{form:?} shown in {debug}");
        }
    }
}
