//! Poll errors every driver builds the same way.
//!
//! A device that answers but refuses (an envelope with an error code and a message) is an `Api`
//! failure of that one call. Its detail names the call, then the device's own words, then its
//! code: one log line says which call failed, why, and what to look up in the device's
//! documentation.

use std::fmt::Display;

use fleet_core::driver::PollError;

/// `<call>: <message> (code <code>)`, or without the code when the envelope has none.
pub(crate) fn envelope_detail(call: &str, message: &str, code: Option<&dyn Display>) -> String {
    match code {
        Some(code) => format!("{call}: {message} (code {code})"),
        None => format!("{call}: {message}"),
    }
}

/// A device's refusal in its answer envelope, as an `Api` error.
pub(crate) fn envelope_error(call: &str, message: &str, code: Option<&dyn Display>) -> PollError {
    PollError::api(envelope_detail(call, message, code))
}

/// `e` with `what` before its detail (an error without detail is left as it is).
pub(crate) fn with_context(e: PollError, what: &str) -> PollError {
    if e.detail().is_empty() {
        e
    } else {
        PollError::new(e.reason(), format!("{what}: {}", e.detail()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_failures_name_the_call_the_message_and_the_code() {
        assert_eq!(
            envelope_error("dns", "no such function", Some(&3007)),
            PollError::api("dns: no such function (code 3007)")
        );
        assert_eq!(
            envelope_detail("api/nodes", "private site", None),
            "api/nodes: private site"
        );
        assert_eq!(
            with_context(PollError::api("x"), "ping"),
            PollError::api("ping: x")
        );
        assert_eq!(
            with_context(PollError::timeout(), "ping"),
            PollError::timeout()
        );
    }
}
