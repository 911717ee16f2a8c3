//! How the platform writes values and answers: the `{"code","message","data","timestamp",
//! "traceID"}` envelope (`code` 0 on success), dates in China Standard Time, and numbers that
//! quirky devices send as strings.

use serde_json::{json, Value};

use crate::util::datetime;

/// The platform writes dates in China Standard Time (UTC+8).
const TZ_OFFSET: u64 = 8 * 3600;

/// Why a request is refused: the platform's code (non-zero) and message.
pub(super) type Refusal = (i64, &'static str);

pub(super) fn local_datetime(unix: u64) -> String {
    datetime(unix, TZ_OFFSET)
}

/// A number as the device usually sends it, or as a string on quirky devices.
pub(super) fn num(quirky: bool, v: i64) -> Value {
    if quirky {
        Value::String(v.to_string())
    } else {
        json!(v)
    }
}

/// The answer to a request: `data` on success, `null` data and the refusal's code otherwise.
pub(super) fn envelope(answer: Result<Value, Refusal>, now: i64, trace_id: &str) -> String {
    let envelope = match answer {
        Ok(data) => json!({"code": 0, "message": "操作成功", "data": data,
                           "timestamp": now, "traceID": trace_id}),
        Err((code, message)) => json!({"code": code, "message": message, "data": null,
                                       "timestamp": now, "traceID": trace_id}),
    };
    envelope.to_string()
}
