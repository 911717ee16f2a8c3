//! Logs on stderr, as text or JSON, that a device cannot forge or garble.
//!
//! Devices choose some of the words that end up in log lines (their error messages, names). In
//! the text format those words are written as they are, so a newline in a device's message would
//! start what looks like a log line of our own, and escape sequences would reach the operator's
//! terminal. Every event passes through [`Escaping`], which writes control characters inside an
//! event as visible escapes and keeps only the event's final newline. JSON events carry no raw
//! control characters, so they pass through unchanged.

use std::io::{self, Write};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Libraries whose trace output prints requests verbatim, `Authorization` headers included.
const VERBATIM_TRACERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

/// Installs the global subscriber: `level` is a level or a tracing filter directive.
pub(crate) fn init(level: &str, json: bool) {
    let mut filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Trace level must not leak a credential, so those libraries stop at debug.
    if filter.max_level_hint() == Some(LevelFilter::TRACE) {
        for target in VERBATIM_TRACERS {
            filter = filter.add_directive(format!("{target}=debug").parse().expect("valid"));
        }
    }
    // No colours: they are escape sequences too, and logs go to journald or a container
    // runtime far more often than to a terminal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Escaping(io::stderr));
    if json {
        builder.json().init();
    } else {
        builder.init();
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
/// `\x1b`), so one event is always one line.
fn escape_event(event: &[u8]) -> Vec<u8> {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (event, &b""[..]),
    };
    if !body.iter().any(|&b| needs_escape(b)) {
        return event.to_vec();
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b if needs_escape(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

fn needs_escape(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

#[cfg(test)]
mod tests {
    use super::escape_event;

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
    fn ordinary_events_and_utf8_pass_unchanged() {
        let event = "INFO 路由器 \"hq\"\tok\n".as_bytes();
        assert_eq!(escape_event(event), event);
    }
}
