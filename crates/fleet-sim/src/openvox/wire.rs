//! How the gateway writes an answer: the `{"uri","msg","code","data"}` envelope in the device's
//! key order, `code` as a number or (some firmware) a string, and `data: []` for errors, as the
//! device writes an empty PHP array.

use serde_json::{json, Value};

use super::config::OpenvoxSimConfig;

/// What an answer carries inside the envelope.
pub(super) enum Answer {
    Ok(Value),
    Error(i64, &'static str),
}

/// The envelope, written by hand to keep the device's key order.
pub(super) fn envelope(cfg: &OpenvoxSimConfig, uri: &str, answer: Answer) -> String {
    let (code, msg, data) = match answer {
        Answer::Ok(data) => (200, "", data),
        Answer::Error(code, msg) => (code, msg, json!([])),
    };
    let code = if cfg.code_as_string {
        format!("\"{code}\"")
    } else {
        code.to_string()
    };
    format!(
        r#"{{"uri":{},"msg":{},"code":{code},"data":{data}}}"#,
        Value::from(uri),
        Value::from(msg)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_the_device_key_order_and_code_type() {
        let mut cfg = OpenvoxSimConfig::default();
        let ok = envelope(&cfg, "sys_info/cdr", Answer::Ok(json!([])));
        assert_eq!(
            ok,
            r#"{"uri":"sys_info/cdr","msg":"","code":200,"data":[]}"#
        );
        cfg.code_as_string = true;
        let err = envelope(&cfg, "x", Answer::Error(401, "no"));
        assert_eq!(err, r#"{"uri":"x","msg":"no","code":"401","data":[]}"#);
    }
}
