//! Logs on stderr as logfmt (the Prometheus ecosystem's default), text or JSON, in a shape a
//! device cannot forge or garble.
//!
//! Devices choose some of the words that end up in log lines (their error messages, names). In
//! the text format those words are written as they are, so a newline in a device's message would
//! start what looks like a log line of our own, and escape sequences would reach the operator's
//! terminal. Every event passes through [`Escaping`], which writes control characters inside an
//! event as visible escapes and keeps only the event's final newline; logfmt and JSON quote
//! their values themselves.
//!
//! Colour: only the `text` format, only when stderr is a terminal and `NO_COLOR` is unset or
//! empty (<https://no-color.org>). Logs go to journald, a container runtime or a file far more
//! often than to a terminal, and there colour codes are noise. A coloured event cannot pass
//! through [`Escaping`] (its own colour codes are escape sequences), so its fields are escaped
//! one by one instead ([`EscapedFields`]): the colours are the formatter's, never a device's.

use std::fmt;
use std::io::{self, IsTerminal, Write};

use clap::ValueEnum;
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Libraries whose trace output prints requests verbatim, `Authorization` headers included.
const VERBATIM_TRACERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Logfmt,
    Json,
    Text,
}

/// `--log.level`: a level as the Prometheus binaries spell them (`warning` too), or a tracing
/// filter directive such as `info,fleet_drivers=debug`. Anything else is refused, so a typo
/// cannot silence the logs.
pub(crate) fn parse_level(s: &str) -> Result<String, String> {
    let level = s.trim().to_ascii_lowercase();
    match level.as_str() {
        "error" | "warn" | "info" | "debug" | "trace" => Ok(level),
        "warning" => Ok("warn".into()),
        _ if s.contains('=') => EnvFilter::try_new(s)
            .map(|_| s.to_string())
            .map_err(|e| format!("not a valid filter: {e}")),
        _ => Err(format!(
            "unknown level {s:?}: one of error, warn, info, debug, trace, or a filter such as \
             \"info,fleet_drivers=debug\""
        )),
    }
}

/// Installs the global subscriber; `level` has passed [`parse_level`].
pub(crate) fn init(level: &str, format: LogFormat) {
    let mut filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Trace level must not leak a credential, so those libraries stop at debug.
    if filter.max_level_hint() == Some(LevelFilter::TRACE) {
        for target in VERBATIM_TRACERS {
            filter = filter.add_directive(format!("{target}=debug").parse().expect("valid"));
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == LogFormat::Text && colour(io::stderr().is_terminal()) {
        return builder
            .with_ansi(true)
            .fmt_fields(EscapedFields)
            .with_writer(io::stderr)
            .init();
    }
    let builder = builder.with_ansi(false).with_writer(Escaping(io::stderr));
    match format {
        LogFormat::Logfmt => builder.event_format(Logfmt).init(),
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.fmt_fields(EscapedFields).init(),
    }
}

/// Whether the text format colours its levels: on a terminal, unless `NO_COLOR` says not to.
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The text format's fields as tracing-subscriber writes them (the message, then `key=value`,
/// strings quoted), with control characters in names and values escaped as [`escape_event`]
/// does.
struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = TextFields {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct TextFields<'w> {
    writer: Writer<'w>,
    /// The first field is written without a leading space.
    first: bool,
    result: fmt::Result,
}

impl TextFields<'_> {
    fn write(&mut self, field: &tracing::field::Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let text = if field.name() == "message" {
            value.to_string()
        } else {
            format!("{}={value}", field.name())
        };
        let separator = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = self
            .writer
            .write_str(separator)
            .and_then(|()| write_escaped(&mut self.writer, &text));
    }
}

impl tracing::field::Visit for TextFields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

/// `text` with every control character but tab written as a visible escape: C0 and DEL as
/// `\n`, `\r` or `\x1b`, C1 (a terminal reads U+009B as CSI) as `\u009b`, which is also how
/// JSON writes it (JSON encoders leave C1 raw, so it reaches this writer inside JSON strings).
fn write_escaped(w: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            c if !needs_escape(c) => w.write_char(c)?,
            c if c.is_ascii() => write!(w, "\\x{:02x}", c as u32)?,
            c => write!(w, "\\u{:04x}", c as u32)?,
        }
    }
    Ok(())
}

/// `ts=… level=… target=… msg="…" key=value …`, one event a line.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("ts=")?;
        SystemTime.format_time(&mut w)?;
        let level = meta.level().as_str().to_ascii_lowercase();
        write!(w, " level={level} target={}", LogfmtValue(meta.target()))?;
        let mut fields = LogfmtFields(Vec::new());
        event.record(&mut fields);
        for (key, value) in &fields.0 {
            let key = if *key == "message" { "msg" } else { key };
            write!(w, " {key}={}", LogfmtValue(value))?;
        }
        writeln!(w)
    }
}

struct LogfmtFields(Vec<(&'static str, String)>);

impl tracing::field::Visit for LogfmtFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name(), value.to_string()));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}")));
    }
}

/// A logfmt value: bare when it is one plain word, else quoted with `"`, `\` and control
/// characters escaped.
struct LogfmtValue<'a>(&'a str);

impl fmt::Display for LogfmtValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = !self.0.is_empty()
            && self
                .0
                .chars()
                .all(|c| !c.is_control() && !c.is_whitespace() && c != '"' && c != '=');
        if plain {
            return f.write_str(self.0);
        }
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        f.write_str("\"")
    }
}

/// A writer that escapes control characters in each event it is handed; the formatter hands
/// it one whole event per `write`.
struct Escaping<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Escaping<M> {
    type Writer = EscapingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter(self.0.make_writer())
    }
}

struct EscapingWriter<W>(W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, event: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_event(event))?;
        Ok(event.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The event with every control character but tab and a final newline escaped (`\n`, `\r`,
/// `\x1b`, `\u009b`), so one event is always one line.
fn escape_event(event: &[u8]) -> Vec<u8> {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(body) => (body, "\n"),
        None => (event, ""),
    };
    let body = String::from_utf8_lossy(body);
    if !body.chars().any(needs_escape) {
        return event.to_vec();
    }
    let mut out = String::with_capacity(event.len() + 16);
    // Writing to a String cannot fail.
    let _ = write_escaped(&mut out, &body);
    out.push_str(end);
    out.into_bytes()
}

fn needs_escape(c: char) -> bool {
    c.is_control() && c != '\t'
}

#[cfg(test)]
mod tests {
    use super::{escape_event, parse_level, LogfmtValue};

    #[test]
    fn a_device_newline_cannot_start_a_log_line_and_escapes_never_reach_the_terminal() {
        let event =
            b"WARN poll failed error=HTTP 500: boom\n2026-01-01 INFO forged\x1b[31m red\r\n";
        let out = escape_event(event);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "WARN poll failed error=HTTP 500: boom\\n2026-01-01 INFO forged\\x1b[31m red\\r\n"
        );
    }

    #[test]
    fn a_one_character_csi_is_escaped_like_the_seven_bit_one() {
        let out = escape_event("poll failed \u{9b}2J\n".as_bytes());
        assert_eq!(String::from_utf8(out).unwrap(), "poll failed \\u009b2J\n");
    }

    #[test]
    fn ordinary_events_and_utf8_pass_unchanged() {
        let event = "INFO 路由器 \"hq\"\tok\n".as_bytes();
        assert_eq!(escape_event(event), event);
    }

    #[test]
    fn logfmt_values_are_bare_words_or_quoted_and_escaped() {
        let show = |s: &str| LogfmtValue(s).to_string();
        assert_eq!(show("ikuai"), "ikuai");
        assert_eq!(show(""), "\"\"");
        assert_eq!(show("poll failed"), "\"poll failed\"");
        assert_eq!(show("a=b"), "\"a=b\"");
        assert_eq!(show("say \"hi\"\n\\"), "\"say \\\"hi\\\"\\n\\\\\"");
        assert_eq!(show("\x1b[31m"), "\"\\u{1b}[31m\"");
    }

    #[test]
    fn levels_as_operators_spell_them_and_nothing_else() {
        assert_eq!(parse_level("warning"), Ok("warn".into()));
        assert_eq!(parse_level("INFO"), Ok("info".into()));
        assert_eq!(
            parse_level("info,fleet_drivers=debug"),
            Ok("info,fleet_drivers=debug".into())
        );
        let e = parse_level("loud").unwrap_err();
        assert!(e.contains("error, warn, info, debug"), "{e}");
    }
}
