//! JSON-RPC 2.0 to Komari's `POST /api/rpc2` (servers 1.0.7 and later): the methods the driver
//! calls and the server version that brought each, one batch per request, and the replies
//! matched back to their calls by id.
//!
//! Errors are kept apart by what they say about the server. HTTP 404 or 405 for the endpoint
//! means the server has no RPC at all ([`BatchError::NoRpc`]); `-32601` for one call means the
//! server lacks that method ([`CallError::MethodNotFound`]); both are how `source = "auto"`
//! learns to fall back. `-32041` (permission denied) is an `auth` failure, any other error
//! object an `api` failure of its call, and a body that is not JSON-RPC a `decode` failure.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::model::refused;
use crate::util::{envelope_detail, lenient};
use fleet_core::driver::PollError;
use reqwest::StatusCode;

/// Where the server answers JSON-RPC.
pub(super) const PATH: &str = "api/rpc2";

/// A Komari release as `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ServerVersion(u32, u32, u32);

impl ServerVersion {
    /// `1.2.6`, `v1.0.7`, `1.1.0-beta.2`; source builds (`dev`, `0.0.1`) and anything else are
    /// unknown (`None`): such a server may have any method, so it is asked and its answer
    /// decides.
    pub(super) fn parse(text: &str) -> Option<ServerVersion> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let core = text.split(['-', '+', ' ']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let v = ServerVersion(
            parts.next()??,
            parts.next()??,
            parts.next().unwrap_or(Some(0))?,
        );
        (v > ServerVersion(0, 0, 1)).then_some(v)
    }
}

/// The methods the driver calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Version,
    Nodes,
    LatestStatus,
    PingTasks,
    PingMetricStats,
}

impl Method {
    pub(super) fn name(self) -> &'static str {
        match self {
            Method::Version => "common:getVersion",
            Method::Nodes => "common:getNodes",
            Method::LatestStatus => "common:getNodesLatestStatus",
            Method::PingTasks => "public:getPublicPingTasks",
            Method::PingMetricStats => "public:getPingMetricStats",
        }
    }

    /// The first release that has the method.
    fn since(self) -> ServerVersion {
        match self {
            Method::Version | Method::Nodes | Method::LatestStatus => ServerVersion(1, 0, 7),
            Method::PingTasks => ServerVersion(1, 2, 5),
            Method::PingMetricStats => ServerVersion(1, 2, 6),
        }
    }

    /// Whether a server of `version` has the method; an unknown version is assumed to.
    pub(super) fn offered_by(self, version: Option<ServerVersion>) -> bool {
        version.is_none_or(|v| v >= self.since())
    }
}

/// One call of a batch.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) params: Option<Value>,
}

impl Call {
    pub(super) fn new(method: Method) -> Call {
        Call {
            method,
            params: None,
        }
    }
}

/// The request body: the calls as a batch, with ids 1, 2, … in order.
pub(super) fn batch_body(calls: &[Call]) -> Vec<u8> {
    let batch: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut call = json!({"jsonrpc": "2.0", "id": i + 1, "method": c.method.name()});
            if let Some(params) = &c.params {
                call["params"] = params.clone();
            }
            call
        })
        .collect();
    serde_json::to_vec(&batch).unwrap_or_default()
}

/// Why a whole batch has no answers.
#[derive(Debug)]
pub(super) enum BatchError {
    /// The server has no `/api/rpc2` (HTTP 404 or 405).
    NoRpc(PollError),
    Failed(PollError),
}

impl BatchError {
    pub(super) fn into_poll_error(self) -> PollError {
        match self {
            BatchError::NoRpc(e) | BatchError::Failed(e) => e,
        }
    }
}

/// Judges the HTTP answer to a batch: the body when it may hold replies.
pub(super) fn accepted(status: StatusCode, body: Vec<u8>) -> Result<Vec<u8>, BatchError> {
    if status.is_success() {
        return Ok(body);
    }
    let e = refused(PATH, status, &body);
    if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
        Err(BatchError::NoRpc(e))
    } else {
        Err(BatchError::Failed(e))
    }
}

/// Why one call of a batch has no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(super) enum CallError {
    #[error("{0}: method not found on this server (code -32601)")]
    MethodNotFound(&'static str),
    #[error("{}", envelope_detail(.method, .message, Some(.code)))]
    Refused {
        method: &'static str,
        code: i64,
        message: String,
    },
    #[error("{0}: the batch answer has no reply for it")]
    Missing(&'static str),
    #[error("{0}: {1}")]
    BadResult(&'static str, String),
}

/// Komari's code for a call the caller may not make.
const PERMISSION_DENIED: i64 = -32041;
const METHOD_NOT_FOUND: i64 = -32601;

impl CallError {
    pub(super) fn into_poll_error(self) -> PollError {
        match &self {
            CallError::Refused { code, .. } if *code == PERMISSION_DENIED => {
                PollError::auth(self.to_string())
            }
            CallError::BadResult(..) => PollError::decode(self.to_string()),
            _ => PollError::api(self.to_string()),
        }
    }
}

/// One reply object of the answer; the result stays unparsed text of the body until taken.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(default)]
    id: Value,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorObject {
    #[serde(deserialize_with = "lenient::opt_f64")]
    code: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    message: String,
}

/// A raw result; `None` for `"result": null` (an empty answer, not a missing one).
type RawResult<'a> = Result<Option<&'a RawValue>, CallError>;

/// A batch's answers, one per call, in the order of the calls.
pub(super) struct Replies<'a> {
    calls: Vec<Method>,
    results: Vec<Option<RawResult<'a>>>,
}

impl<'a> Replies<'a> {
    /// Reads the answer to `calls`: an array of replies in any order, matched by id. A single
    /// error object instead of the array (the server refused the batch as a whole) fails every
    /// call with it.
    pub(super) fn parse(calls: Vec<Method>, body: &'a [u8]) -> Result<Replies<'a>, PollError> {
        let not_rpc = || PollError::decode(format!("{PATH}: answer is not JSON-RPC"));
        let replies: Vec<Reply<'a>> = match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => serde_json::from_slice(body).map_err(|_| not_rpc())?,
            Some(b'{') => vec![serde_json::from_slice(body).map_err(|_| not_rpc())?],
            _ => return Err(not_rpc()),
        };
        let mut results: Vec<Option<RawResult<'a>>> = calls.iter().map(|_| None).collect();
        let whole_batch = replies.len() == 1 && replies[0].id.is_null();
        for reply in replies {
            let index = match &reply.id {
                Value::Null if whole_batch => None,
                id => match lenient::number(id) {
                    Some(n) if n >= 1.0 && n <= calls.len() as f64 && n.fract() == 0.0 => {
                        Some(n as usize - 1)
                    }
                    _ => continue,
                },
            };
            let indices: Vec<usize> = match index {
                Some(i) => vec![i],
                None => (0..calls.len()).collect(),
            };
            for i in indices {
                let method = calls[i].name();
                let answer = match &reply.error {
                    Some(e) => Err(call_error(method, e)),
                    None => Ok(reply.result.filter(|r| r.get() != "null")),
                };
                results[i].get_or_insert(answer);
            }
        }
        Ok(Replies { calls, results })
    }

    /// The typed result of `method`'s call; `None` when it was not in the batch.
    pub(super) fn take<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        method: Method,
    ) -> Option<Result<T, CallError>> {
        let i = self.calls.iter().position(|m| *m == method)?;
        let name = method.name();
        Some(match self.results[i].take() {
            None => Err(CallError::Missing(name)),
            Some(Err(e)) => Err(e),
            Some(Ok(None)) => Ok(T::default()),
            Some(Ok(Some(raw))) => serde_json::from_str(raw.get())
                .map_err(|e| CallError::BadResult(name, e.to_string())),
        })
    }
}

/// Where the results of a batch read in place go, by the method of their call.
pub(super) trait Results {
    /// Reads the result of `method`'s call from `d` and keeps it; a `null` result is the
    /// method's empty answer, as [`Replies::take`] reads it.
    fn read<'de, D: Deserializer<'de>>(&mut self, method: Method, d: D) -> Result<(), D::Error>;
    /// `method`'s call has no result: its error, or no reply for it.
    fn failed(&mut self, method: Method, e: CallError);
}

/// Reads the answer to `calls` into `results` in one pass, each result decoded where it lies:
/// the way [`Replies`] reads it first (every result kept as text, then decoded again) scans a
/// 2,000-node status twice. This needs what servers send: an array of replies, each naming its
/// call by id before its result (`jsonrpc`, `id`, then `result` or `error`). `None` for
/// anything else, and for an answer some part of which does not read (a result that is no
/// answer of its method, a reply with a field twice): those go through [`Replies`], whose
/// answers and errors are the driver's (from the start: what was read here is dropped).
pub(super) fn read_in_place<R: Results + Default>(calls: &[Method], body: &[u8]) -> Option<R> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    let mut batch = InPlace {
        calls,
        answered: vec![false; calls.len()],
        results: R::default(),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_seq(&mut batch).ok()?;
    de.end().ok()?;
    for (i, method) in calls.iter().enumerate() {
        if !batch.answered[i] {
            batch
                .results
                .failed(*method, CallError::Missing(method.name()));
        }
    }
    Some(batch.results)
}

/// The state of [`read_in_place`]: which calls have their reply (the first reply of an id
/// counts, as in [`Replies::parse`]).
struct InPlace<'c, R> {
    calls: &'c [Method],
    answered: Vec<bool>,
    results: R,
}

impl<'de, R: Results> Visitor<'de> for &mut InPlace<'_, R> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a batch of replies")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(&mut *self)?.is_some() {}
        Ok(())
    }
}

impl<'de, R: Results> DeserializeSeed<'de> for &mut InPlace<'_, R> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(ReplyInPlace(self))
    }
}

/// One reply of [`read_in_place`].
struct ReplyInPlace<'b, 'c, R>(&'b mut InPlace<'c, R>);

impl<'de, R: Results> Visitor<'de> for ReplyInPlace<'_, '_, R> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a reply")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let batch = self.0;
        // `None`: no id yet; `Some(None)`: an id of no call (the reply is skipped).
        let mut call: Option<Option<usize>> = None;
        let (mut result, mut error) = (false, None);
        let out_of_order = || serde::de::Error::custom("not in the order read in place");
        while let Some(key) = map.next_key::<ReplyField>()? {
            match key {
                ReplyField::Id if call.is_none() => {
                    let id: Value = map.next_value()?;
                    let n = lenient::number(&id).ok_or_else(out_of_order)?;
                    let index = (n >= 1.0 && n <= batch.calls.len() as f64 && n.fract() == 0.0)
                        .then(|| n as usize - 1);
                    call = Some(index.filter(|i| !batch.answered[*i]));
                }
                ReplyField::Result if !result => {
                    result = true;
                    match call.ok_or_else(out_of_order)? {
                        Some(i) => {
                            map.next_value_seed(ResultOf(batch.calls[i], &mut batch.results))?
                        }
                        None => map.next_value::<IgnoredAny>().map(drop)?,
                    }
                }
                ReplyField::Error if error.is_none() => {
                    error = Some(map.next_value::<Option<ErrorObject>>()?);
                }
                ReplyField::Other => map.next_value::<IgnoredAny>().map(drop)?,
                // A field twice: as `Replies::parse` reads it, the answer is not JSON-RPC.
                _ => return Err(out_of_order()),
            }
        }
        // A reply without an id may be an error for the whole batch: `Replies` reads that.
        let Some(index) = call.ok_or_else(out_of_order)? else {
            return Ok(());
        };
        batch.answered[index] = true;
        let method = batch.calls[index];
        match error.flatten() {
            Some(e) => batch.results.failed(method, call_error(method.name(), &e)),
            None if !result => batch
                .results
                .read(method, serde::de::value::UnitDeserializer::new())?,
            None => {}
        }
        Ok(())
    }
}

/// The fields of a reply [`read_in_place`] reads.
enum ReplyField {
    Id,
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for ReplyField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(match name.as_ref() {
            "id" => ReplyField::Id,
            "result" => ReplyField::Result,
            "error" => ReplyField::Error,
            _ => ReplyField::Other,
        })
    }
}

/// The result of a call of `method`, read into the results.
struct ResultOf<'r, R>(Method, &'r mut R);

impl<'de, R: Results> DeserializeSeed<'de> for ResultOf<'_, R> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.1.read(self.0, d)
    }
}

fn call_error(method: &'static str, e: &ErrorObject) -> CallError {
    let code = e.code.map_or(0, |c| c as i64);
    if code == METHOD_NOT_FOUND {
        return CallError::MethodNotFound(method);
    }
    let message = if e.message.is_empty() {
        "error".to_string()
    } else {
        e.message.chars().take(120).collect()
    };
    CallError::Refused {
        method,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::fixture;

    #[test]
    fn versions_that_have_rpc_and_source_builds_that_may() {
        let v = |s| ServerVersion::parse(s);
        assert_eq!(v("1.0.7"), Some(ServerVersion(1, 0, 7)));
        assert_eq!(v("v1.2.6"), Some(ServerVersion(1, 2, 6)));
        assert_eq!(v("1.1.0-beta.2"), Some(ServerVersion(1, 1, 0)));
        assert_eq!(v("dev"), None);
        assert_eq!(v("0.0.1"), None, "a source build");
        assert!(!Method::LatestStatus.offered_by(v("1.0.6")));
        assert!(Method::LatestStatus.offered_by(v("1.0.7")));
        assert!(!Method::PingMetricStats.offered_by(v("1.2.5")));
        assert!(Method::PingTasks.offered_by(v("1.2.5")));
        assert!(Method::PingMetricStats.offered_by(None));
    }

    #[test]
    fn batch_replies_are_matched_by_id_in_any_order() {
        let calls = vec![Method::Version, Method::LatestStatus, Method::PingTasks];
        let body = fixture("komari", "rpc_batch_reply.json");
        let mut replies = Replies::parse(calls, &body).unwrap();
        let version: super::super::model::Version = replies.take(Method::Version).unwrap().unwrap();
        assert_eq!(version.version, "1.2.6");
        assert_eq!(
            replies.take::<Value>(Method::PingTasks).unwrap(),
            Err(CallError::MethodNotFound("public:getPublicPingTasks"))
        );
        assert!(replies.take::<Value>(Method::LatestStatus).unwrap().is_ok());
        assert!(replies.take::<Value>(Method::Nodes).is_none(), "not asked");
    }

    /// Every result as a JSON value, by method: what either reading made of the answer.
    #[derive(Default, Debug, PartialEq)]
    struct Read(Vec<(&'static str, Result<Value, CallError>)>);

    impl Results for Read {
        fn read<'de, D: Deserializer<'de>>(&mut self, m: Method, d: D) -> Result<(), D::Error> {
            let v = Option::<Value>::deserialize(d)?.unwrap_or_default();
            self.0.push((m.name(), Ok(v)));
            Ok(())
        }
        fn failed(&mut self, m: Method, e: CallError) {
            self.0.push((m.name(), Err(e)));
        }
    }

    fn two_pass(calls: &[Method], body: &[u8]) -> Read {
        let mut replies = Replies::parse(calls.to_vec(), body).unwrap();
        let mut read = Read::default();
        for m in calls {
            read.0.push((m.name(), replies.take::<Value>(*m).unwrap()));
        }
        read
    }

    fn sorted(mut read: Read) -> Read {
        read.0.sort_by_key(|(m, _)| *m);
        read
    }

    #[test]
    fn an_answer_in_server_order_reads_in_one_pass_as_in_two() {
        let calls = [
            Method::Version,
            Method::LatestStatus,
            Method::PingTasks,
            Method::Nodes,
        ];
        let fixture = fixture("komari", "rpc_batch_reply.json");
        let text = String::from_utf8(fixture).unwrap();
        // The fixture, a reply repeated (the first counts), an id of no call, a reply with no
        // result (the empty answer) and one with `"error": null`.
        let body = format!(
            r#"{}, {{"jsonrpc":"2.0","id":1,"result":{{"version":"0.0.1"}}}}, {{"id":9,"result":[1]}}, {{"id":"4","error":null}}]"#,
            text.trim().trim_end_matches(']')
        );
        for body in [text.as_bytes(), body.as_bytes()] {
            let in_place = read_in_place::<Read>(&calls, body).expect("read in place");
            assert_eq!(sorted(in_place), sorted(two_pass(&calls, body)));
        }
        let in_place = read_in_place::<Read>(&calls, text.as_bytes()).unwrap();
        assert!(in_place.0.contains(&(
            "common:getNodes",
            Err(CallError::Missing("common:getNodes"))
        )));
    }

    #[test]
    fn answers_out_of_server_order_are_left_to_the_two_pass_reading() {
        let calls = [Method::Version, Method::Nodes];
        for body in [
            // The result before the id.
            r#"[{"result":{"version":"1"},"id":1}]"#,
            // One error for the whole batch, as an object and as a lone reply without an id.
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"}}"#,
            r#"[{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"}}]"#,
            // A field of a reply twice.
            r#"[{"id":1,"id":2,"result":{}}]"#,
            r#"[{"id":1,"result":{},"result":{}}]"#,
            // Not JSON after all.
            r#"[{"id":1,"result":{}}"#,
        ] {
            assert!(
                read_in_place::<Read>(&calls, body.as_bytes()).is_none(),
                "{body}"
            );
        }
    }

    #[test]
    fn permission_denied_is_auth_and_other_errors_are_api() {
        let body = fixture("komari", "rpc_permission_denied.json");
        let mut replies = Replies::parse(vec![Method::Nodes], &body).unwrap();
        let e = replies.take::<Value>(Method::Nodes).unwrap().unwrap_err();
        assert_eq!(
            e.into_poll_error(),
            PollError::auth("common:getNodes: Permission denied (code -32041)")
        );
        let e = CallError::Refused {
            method: "common:getNodes",
            code: -32603,
            message: "Internal error".into(),
        };
        assert_eq!(
            e.into_poll_error().reason(),
            fleet_core::driver::Reason::Api
        );
        assert_eq!(
            Replies::parse(vec![Method::Nodes], b"<html>").err(),
            Some(PollError::decode("api/rpc2: answer is not JSON-RPC"))
        );
    }

    #[test]
    fn a_missing_endpoint_is_no_rpc_other_statuses_fail() {
        assert!(matches!(
            accepted(StatusCode::NOT_FOUND, b"404 page not found".to_vec()),
            Err(BatchError::NoRpc(_))
        ));
        let e = accepted(
            StatusCode::UNAUTHORIZED,
            fixture("komari", "private_site_401.json"),
        );
        assert!(
            matches!(e, Err(BatchError::Failed(ref e)) if e.reason() == fleet_core::driver::Reason::Auth)
        );
        assert!(accepted(StatusCode::OK, b"[]".to_vec()).is_ok());
    }

    #[test]
    fn the_request_is_a_batch_with_ids_in_order() {
        let mut stats = Call::new(Method::PingMetricStats);
        stats.params = Some(json!({"hours": 24}));
        let body = batch_body(&[Call::new(Method::LatestStatus), stats]);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!([
                {"jsonrpc": "2.0", "id": 1, "method": "common:getNodesLatestStatus"},
                {"jsonrpc": "2.0", "id": 2, "method": "public:getPingMetricStats", "params": {"hours": 24}},
            ])
        );
    }
}
