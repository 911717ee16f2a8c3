//! The iKuai web API client: cookie login, one call at a time, and one re-login a poll when the
//! router says the session expired. Logins are written to the router's log, so it never logs in
//! per poll or per call.

use base64::Engine;
use reqwest::header::{HeaderValue, COOKIE, SET_COOKIE};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use url::Url;

use super::model::{parse_answer, Answer, Api};
use crate::util::http::{self, MAX_BODY_BYTES};
use crate::util::{envelope_detail, envelope_error, md5_hex, ReloginBudget, RowCut};
use fleet_core::config::Secret;
use fleet_core::driver::{PollContext, PollError};

pub(super) struct IkuaiClient {
    http: reqwest::Client,
    login_url: Url,
    call_url: Url,
    username: String,
    password: Secret,
    /// The `Cookie` header of the current session.
    session: Option<HeaderValue>,
    relogin: ReloginBudget,
    /// This poll's failed login: later calls of the poll fail with it instead of logging in
    /// again (a router that refuses or garbles a login would get one per call otherwise).
    login_failed: Option<PollError>,
    api: Option<Api>,
    /// Entries read per list of one answer.
    max_rows: usize,
    /// Entries this poll's answers listed past `max_rows`.
    pub(super) rows_cut: RowCut,
}

impl IkuaiClient {
    pub(super) fn new(
        http: reqwest::Client,
        base: &Url,
        username: String,
        password: Secret,
        max_rows: usize,
    ) -> Self {
        let join = |path: &str| base.join(path).unwrap_or_else(|_| base.clone());
        IkuaiClient {
            http,
            login_url: join("/Action/login"),
            call_url: join("/Action/call"),
            username,
            password,
            session: None,
            relogin: ReloginBudget::default(),
            login_failed: None,
            api: None,
            max_rows,
            rows_cut: RowCut::default(),
        }
    }

    /// The envelope generation the router answered in last.
    pub(super) fn api(&self) -> Option<Api> {
        self.api
    }

    /// A new poll: a re-login is allowed again.
    pub(super) fn begin_poll(&mut self) {
        self.relogin.new_poll();
        self.login_failed = None;
    }

    /// `POST /Action/call` with `func_name`, action `show` and `param`; returns the payload
    /// (`Data` or `results`). Logs in first when there is no session, and, when the router says
    /// the session expired and the poll has not logged in yet, once more, then retries once.
    pub(super) async fn call<T: DeserializeOwned + Default + Send + 'static>(
        &mut self,
        ctx: &mut PollContext,
        func_name: &str,
        param: Value,
    ) -> Result<T, PollError> {
        let cap = self.max_rows;
        self.call_capped(ctx, func_name, param, cap).await
    }

    /// [`IkuaiClient::call`] with the answer's lists cut at `cap` entries.
    pub(super) async fn call_capped<T: DeserializeOwned + Default + Send + 'static>(
        &mut self,
        ctx: &mut PollContext,
        func_name: &str,
        param: Value,
        cap: usize,
    ) -> Result<T, PollError> {
        let body = json!({"func_name": func_name, "action": "show", "param": param});
        if self.session.is_none() {
            self.login_once(ctx).await?;
        }
        let mut answer = self.call_once(&body, cap).await?;
        if matches!(answer, Answer::SessionExpired) && self.relogin.allows_relogin() {
            self.session = None;
            self.login_once(ctx).await?;
            answer = self.call_once(&body, cap).await?;
        }
        match answer {
            Answer::Ok(payload) => Ok(payload),
            Answer::SessionExpired => {
                self.session = None;
                Err(PollError::auth("session rejected after this poll's login"))
            }
            Answer::Failed { code, message } => {
                Err(envelope_error(func_name, &message, Some(&code)))
            }
        }
    }

    async fn call_once<T: DeserializeOwned + Default + Send + 'static>(
        &mut self,
        body: &Value,
        cap: usize,
    ) -> Result<Answer<T>, PollError> {
        let mut request = self.http.post(self.call_url.clone()).json(body);
        if let Some(cookie) = &self.session {
            request = request.header(COOKIE, cookie.clone());
        }
        let resp = http::send(request).await?;
        let bytes = http::read_body(resp, MAX_BODY_BYTES).await?;
        let parsed = self
            .rows_cut
            .decode_body(cap, bytes, |b| parse_answer(b))
            .await?;
        let (api, answer) = parsed.map_err(PollError::decode)?;
        self.api = Some(api);
        Ok(answer)
    }

    /// Logs in, unless a login already failed in this poll (then fails the same way).
    async fn login_once(&mut self, ctx: &mut PollContext) -> Result<(), PollError> {
        if let Some(e) = &self.login_failed {
            return Err(e.clone());
        }
        let result = self.login(ctx).await;
        if let Err(e) = &result {
            self.login_failed = Some(e.clone());
        }
        result
    }

    async fn login(&mut self, ctx: &mut PollContext) -> Result<(), PollError> {
        self.relogin.logging_in(ctx);
        let (passwd, pass) = login_hashes(self.password.expose());
        let body = json!({
            "username": self.username,
            "passwd": passwd,
            "pass": pass,
            "remember_password": "",
        });
        let resp = http::send(self.http.post(self.login_url.clone()).json(&body)).await?;
        let sess_key = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(sess_key_of);
        let bytes = http::read_body(resp, MAX_BODY_BYTES).await?;
        let (api, answer) = parse_answer::<Value>(&bytes).map_err(PollError::decode)?;
        self.api = Some(api);
        match answer {
            Answer::Ok(_) => {}
            Answer::Failed { code, message } => {
                let detail = envelope_detail("login refused", &message, Some(&code));
                return Err(PollError::auth(detail));
            }
            Answer::SessionExpired => return Err(PollError::auth("login refused")),
        }
        let sess_key =
            sess_key.ok_or_else(|| PollError::auth("login answered without a sess_key cookie"))?;
        let cookie = format!("username={}; login=1; sess_key={sess_key}", self.username);
        self.session = Some(
            HeaderValue::from_str(&cookie)
                .map_err(|_| PollError::auth("username is not valid in a cookie"))?,
        );
        Ok(())
    }
}

/// `passwd` (md5 hex, the only one routers check) and `pass` (what the web UI also sends:
/// base64 of "salt_11" + the password, per the notes; the document's example salts the md5).
fn login_hashes(password: &str) -> (String, String) {
    let passwd = md5_hex(password);
    let pass = base64::engine::general_purpose::STANDARD.encode(format!("salt_11{password}"));
    (passwd, pass)
}

/// The value of `sess_key` in one `Set-Cookie` header.
fn sess_key_of(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?.trim();
    let value = pair.strip_prefix("sess_key=")?;
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_hashes() {
        let (passwd, pass) = super::login_hashes("admin");
        assert_eq!(passwd, "21232f297a57a5a743894a0e4a801fc3");
        assert_eq!(pass, "c2FsdF8xMWFkbWlu");
    }

    #[test]
    fn finds_the_session_cookie() {
        assert_eq!(
            sess_key_of("sess_key=2eb883abce0ca25940867f8ec73ca3c8; path=/"),
            Some("2eb883abce0ca25940867f8ec73ca3c8".into())
        );
        assert_eq!(sess_key_of("username=admin; path=/"), None);
        assert_eq!(sess_key_of("sess_key=; path=/"), None);
    }
}
