//! The platform's open API client: every request signed in headers, one device per call.

use std::time::{Duration, SystemTime};

use url::Url;

use super::model::{parse_envelope, Answer, DeviceFlow};
use crate::util::http::{self, MAX_BODY_BYTES};
use crate::util::{envelope_detail, md5_hex, with_context, RowCut};
use fleet_core::config::Secret;
use fleet_core::driver::PollError;
use fleet_core::time::unix_seconds;

pub(super) const API_VERSION: &str = "2.0.0";
pub(super) const DEVICE_FLOW: &str = "queryDeviceFlow";
const DEVICE_FLOW_PATH: &str = "/openapi/iot/queryDeviceFlow";
/// The platform refuses timestamps more than 10 minutes off; past half that, errors say so.
const SKEW_WARNING_SECS: f64 = 300.0;

/// What one request came to: the `code` label of `iot_api_requests_total` and the result.
pub(super) struct Outcome<T = DeviceFlow> {
    pub code: String,
    pub result: Result<T, PollError>,
}

pub(super) struct IotClient {
    http: reqwest::Client,
    url: Url,
    app_id: String,
    secret: Secret,
    /// Entries read per list of one answer.
    max_rows: usize,
    /// Entries the answers listed past `max_rows`, since the driver last looked.
    pub(super) rows_cut: RowCut,
}

impl IotClient {
    /// `base` is the agent back office's URL without `/admin`; `timeout` bounds one request.
    pub(super) fn new(
        base: &Url,
        app_id: String,
        secret: Secret,
        timeout: Duration,
        max_rows: usize,
    ) -> Self {
        IotClient {
            http: http::client(timeout),
            url: base.join(DEVICE_FLOW_PATH).unwrap_or_else(|_| base.clone()),
            app_id,
            secret,
            max_rows,
            rows_cut: RowCut::default(),
        }
    }

    /// `POST /openapi/iot/queryDeviceFlow` for one device.
    pub(super) async fn device_flow(&self, device_no: &str) -> Outcome {
        let url = self.url.clone();
        self.call(url, &[("deviceNo", device_no)], self.max_rows, device_no)
            .await
    }

    /// The API path `path` of the platform (a configured call).
    pub(super) fn url_of(&self, path: &str) -> Result<Url, String> {
        self.url.join(path).map_err(|e| format!("{path:?}: {e}"))
    }

    /// One signed, form-encoded `POST` to `url`; `data` read as `T`, its lists cut at `cap`;
    /// `what` names the request in errors (a device number, a call's name).
    pub(super) async fn call<T: serde::de::DeserializeOwned + Default + Send + 'static>(
        &self,
        url: Url,
        form: &[(&str, &str)],
        cap: usize,
        what: &str,
    ) -> Outcome<T> {
        let trace_id = format!("{:032x}", rand::random::<u128>());
        let timestamp = (unix_seconds(SystemTime::now()) as u64).to_string();
        let sign = sign(
            &self.app_id,
            API_VERSION,
            &trace_id,
            &timestamp,
            self.secret.expose(),
        );
        let request = self
            .http
            .post(url)
            .header("appID", &self.app_id)
            .header("apiVersion", API_VERSION)
            .header("traceID", &trace_id)
            .header("timestamp", &timestamp)
            .header("sign", sign)
            .form(form);
        let resp = match http::send(request).await {
            Ok(resp) => resp,
            Err(e) => return failed(e),
        };
        let status = resp.status();
        let body = match http::read_body(resp, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(e) if !status.is_success() => {
                return Outcome {
                    code: format!("http_{}", status.as_u16()),
                    result: Err(e),
                }
            }
            Err(e) => return failed(e),
        };
        let parsed = self.rows_cut.decode_body(cap, body, parse_envelope::<T>);
        let envelope = match parsed.await.and_then(|p| p.map_err(PollError::decode)) {
            Ok(envelope) => envelope,
            Err(e) => return failed(with_context(e, what)),
        };
        match envelope.answer {
            Answer::Ok(flow) => Outcome {
                code: "0".into(),
                result: Ok(*flow),
            },
            Answer::Failed { code, message } => {
                let mut text = envelope_detail(what, &message, Some(&code));
                let skew = envelope
                    .server_time
                    .map(|t| t - unix_seconds(SystemTime::now()));
                if let Some(skew) = skew.filter(|s| s.abs() > SKEW_WARNING_SECS) {
                    let side = if skew > 0.0 { "behind" } else { "ahead of" };
                    let minutes = (skew.abs() / 60.0).round();
                    text.push_str(&format!(
                        "; the local clock is {minutes} min {side} the platform's"
                    ));
                }
                let error = if is_signing_refusal(&message) {
                    PollError::auth(text)
                } else {
                    PollError::api(text)
                };
                Outcome {
                    code: code.to_string(),
                    result: Err(error),
                }
            }
        }
    }
}

fn failed<T>(e: PollError) -> Outcome<T> {
    Outcome {
        code: e.reason().to_string(),
        result: Err(e),
    }
}

/// The platform's error codes are not published, so a refusal of the signing headers (which
/// every further request would get too) is recognised by its message.
fn is_signing_refusal(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "签名",
        "sign",
        "appid",
        "密钥",
        "secret",
        "时间戳",
        "timestamp",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// `md5(appID + apiVersion + traceID + timestamp + secret)` as lowercase hex; the body is not
/// signed.
fn sign(app_id: &str, api_version: &str, trace_id: &str, timestamp: &str, secret: &str) -> String {
    md5_hex(&[app_id, api_version, trace_id, timestamp, secret].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platforms_worked_signing_example() {
        assert_eq!(
            sign(
                "qwe123",
                "2.0.0",
                "5831f960804c9217ec01e425b8cc76f5",
                "1698587220",
                "C55rqUa6AvKyuNMYYvoYCSR1BBfSPWK7"
            ),
            "c07a95dbddc1aa915f323cee747aa576"
        );
    }

    #[test]
    fn signing_refusals_are_told_from_device_errors() {
        assert!(is_signing_refusal("签名错误"));
        assert!(is_signing_refusal("Invalid sign"));
        assert!(is_signing_refusal("请求时间戳已过期"));
        assert!(!is_signing_refusal("设备不存在"));
    }
}
