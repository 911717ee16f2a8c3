//! How the server writes values on the wire: the `{"status","message","data"}` envelope and the
//! three time formats the notes list (Go's database form, RFC 3339 in local time, RFC 3339 with
//! nanoseconds in UTC). Which field uses which format is the world's business.

use serde_json::{json, Value};

use crate::util::datetime_with;

/// A successful answer's envelope.
pub(super) fn success(data: Value) -> String {
    json!({"status": "success", "message": "", "data": data}).to_string()
}

/// `2025-05-30 09:10:19.1305505+00:00`: what the node list uses (format 1 of the notes).
pub(super) fn fmt_go_db(unix: u64) -> String {
    format!("{}.{:07}+00:00", datetime_with(unix, ' '), unix % 9_999_991)
}

/// RFC 3339 in the server's local time (format 2 of the notes).
pub(super) fn fmt_local(unix: u64, tz_hours: i64) -> String {
    let local = (unix as i64 + tz_hours * 3600).max(0) as u64;
    let sign = if tz_hours < 0 { '-' } else { '+' };
    format!(
        "{}{sign}{:02}:00",
        datetime_with(local, 'T'),
        tz_hours.abs()
    )
}

/// RFC 3339 with nanoseconds in UTC (format 3; what reports carry).
pub(super) fn fmt_utc_nanos(unix: f64) -> String {
    let secs = unix.floor();
    let nanos = ((unix - secs) * 1e9) as u64;
    format!("{}.{nanos:09}Z", datetime_with(secs as u64, 'T'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_time_formats() {
        assert_eq!(
            fmt_go_db(1_752_564_619),
            format!(
                "2025-07-15 07:30:19.{:07}+00:00",
                1_752_564_619u64 % 9_999_991
            )
        );
        assert_eq!(fmt_local(1_752_564_619, 8), "2025-07-15T15:30:19+08:00");
        assert_eq!(fmt_local(1_752_564_619, -7), "2025-07-15T00:30:19-07:00");
        assert_eq!(
            fmt_utc_nanos(1_752_564_619.5),
            "2025-07-15T07:30:19.500000000Z"
        );
    }
}
