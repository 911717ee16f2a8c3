//! The OpenVox web API client: `POST /controller/<path>` with the token inside the JSON body.
//!
//! Logins cost the device (it delays each one 0–2 s on purpose), so the token is kept across
//! polls and renewed shortly before `token_ttl` runs out. Any answer whose `code` is not 200
//! while holding a token may mean it expired (the device publishes no code for that): the first
//! such answer in a poll, before the token has proved itself, causes one login and one retry.
//! A token that answered 200 in this poll, or was issued in it, is not renewed again, so a call
//! that always fails costs an error, not a login per poll.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use url::Url;

use super::model::{data_object, parse_answer, Answer, Login};
use crate::util::http::{self, MAX_BODY_BYTES};
use crate::util::{envelope_detail, envelope_error, md5_hex, ReloginBudget, RowCut};
use fleet_core::config::Secret;
use fleet_core::driver::{PollContext, PollError};

/// How long before its lifetime ends a token is renewed: a tenth of it, at most a minute.
fn renewal_margin(ttl: Duration) -> Duration {
    (ttl / 10).min(Duration::from_secs(60))
}

struct Token {
    value: Secret,
    issued: Instant,
}

pub(super) struct OpenvoxClient {
    http: reqwest::Client,
    base: Url,
    username: String,
    password: Secret,
    token_ttl: Duration,
    token: Option<Token>,
    /// The token answered 200 during the current poll.
    proven: bool,
    /// One login a poll, whether a renewal or a retry.
    relogin: ReloginBudget,
    logins: u64,
    /// Entries read per list of one answer, and CDR records read per answer.
    max_rows: usize,
    max_cdr_records: usize,
    /// Entries this poll's answers listed past their cap.
    pub(super) rows_cut: RowCut,
}

impl OpenvoxClient {
    pub(super) fn new(
        base: &Url,
        username: String,
        password: Secret,
        timeout: Duration,
        token_ttl: Duration,
        (max_rows, max_cdr_records): (usize, usize),
    ) -> Self {
        OpenvoxClient {
            http: http::client(timeout),
            base: base.clone(),
            username,
            password,
            token_ttl,
            token: None,
            proven: false,
            relogin: ReloginBudget::default(),
            logins: 0,
            max_rows,
            max_cdr_records,
            rows_cut: RowCut::default(),
        }
    }

    /// The caps on lists, as a limit error names them.
    pub(super) fn caps(&self) -> String {
        format!(
            "max_rows = {} (max_cdr_records = {} for CDR records)",
            self.max_rows, self.max_cdr_records
        )
    }

    /// Successful logins so far; a change tells the driver the device may have rebooted.
    pub(super) fn logins(&self) -> u64 {
        self.logins
    }

    pub(super) fn begin_poll(&mut self) {
        self.proven = false;
        self.relogin.new_poll();
    }

    /// Calls `path` with `params` plus the token; returns `data`.
    pub(super) async fn call(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
        params: Map<String, Value>,
    ) -> Result<Value, PollError> {
        let due = self
            .token
            .as_ref()
            .is_none_or(|t| t.issued.elapsed() + renewal_margin(self.token_ttl) >= self.token_ttl);
        if due {
            self.login(ctx).await?;
        }
        match self.post(path, &params, true).await? {
            Answer::Ok(data) => {
                self.proven = true;
                Ok(data)
            }
            Answer::Failed { .. } if !self.proven && self.relogin.allows_relogin() => {
                self.token = None;
                self.login(ctx).await?;
                match self.post(path, &params, true).await? {
                    Answer::Ok(data) => {
                        self.proven = true;
                        Ok(data)
                    }
                    Answer::Failed { code, message } => Err(api_error(path, code, message)),
                }
            }
            Answer::Failed { code, message } => Err(api_error(path, code, message)),
        }
    }

    /// Calls a whitelisted path that needs no token (`sys_info/device_info`); the token goes
    /// along when there is one, as the document's example does, but no login is made for it.
    pub(super) async fn call_anonymous(&mut self, path: &str) -> Result<Value, PollError> {
        match self.post(path, &Map::new(), true).await? {
            Answer::Ok(data) => Ok(data),
            Answer::Failed { code, message } => Err(api_error(path, code, message)),
        }
    }

    async fn post(
        &self,
        path: &str,
        params: &Map<String, Value>,
        with_token: bool,
    ) -> Result<Answer, PollError> {
        let mut body = params.clone();
        if let Some(t) = self.token.as_ref().filter(|_| with_token) {
            body.insert("token".into(), t.value.expose().into());
        }
        let url = self
            .base
            .join(&format!("/controller/{path}"))
            .map_err(|e| PollError::http(format!("{path}: {e}")))?;
        let resp = http::send(self.http.post(url).json(&body)).await?;
        let bytes = http::read_body(resp, MAX_BODY_BYTES).await?;
        let cap = if path == "sys_info/cdr" {
            self.max_cdr_records
        } else {
            self.max_rows
        };
        let parsed = self.rows_cut.decode_body(cap, bytes, parse_answer).await?;
        parsed.map_err(|e| PollError::decode(format!("{path}: {e}")))
    }

    async fn login(&mut self, ctx: &mut PollContext) -> Result<(), PollError> {
        self.relogin.logging_in(ctx);
        self.token = None;
        let mut params = Map::new();
        params.insert("username".into(), self.username.clone().into());
        params.insert("password".into(), md5_hex(self.password.expose()).into());
        let data = match self.post("auth/login", &params, false).await? {
            Answer::Ok(data) => data,
            Answer::Failed { code, message } => {
                let detail = envelope_detail("login refused", &message, Some(&code));
                return Err(PollError::auth(detail));
            }
        };
        let login: Login = data_object(data).unwrap_or_default();
        if login.token.is_empty() {
            return Err(PollError::auth("login answered 200 without a token"));
        }
        self.token = Some(Token {
            value: Secret::new(login.token),
            issued: Instant::now(),
        });
        self.logins += 1;
        Ok(())
    }
}

fn api_error(path: &str, code: String, message: String) -> PollError {
    envelope_error(path, &message, Some(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(
            renewal_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(120)),
            Duration::from_secs(12)
        );
    }
}
