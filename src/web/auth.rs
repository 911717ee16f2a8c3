//! Basic auth: every path, as exporter-toolkit does, or none when the web config names no users.
//!
//! Policy: passwords are bcrypt hashes, verified off the async threads. Each verdict, right or
//! wrong, is cached under a SHA-256 digest of the presented credentials (never the password
//! itself), in a bounded cache, so a scraper repeating its password costs one bcrypt, not one
//! per request, and a flood of random passwords cannot grow memory. An unknown user costs the
//! same bcrypt as a known one. Users are re-read when the web config file changes; a changed
//! file that does not validate keeps the previous users.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use tracing::{info, warn};

use super::{stamp, Stamp, WebConfig};

/// Enough for every distinct credential a fleet's scrapers use, small enough that a flood of
/// random passwords cannot grow memory.
const AUTH_CACHE_ENTRIES: usize = 1024;

/// User names to bcrypt hashes; `Debug` shows the names only.
#[derive(Default)]
pub(super) struct Users(pub(super) BTreeMap<String, String>);

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// `router` behind basic auth when `web` names users; every path, as exporter-toolkit does.
pub(super) fn protect(router: Router, web: &WebConfig) -> Router {
    if !web.auth_enabled() {
        return router;
    }
    let mut auth = BasicAuth::new(web.users.0.clone());
    auth.file = web.file.clone().map(|path| {
        let stamp = stamp(&path);
        (path, Mutex::new(stamp))
    });
    router.layer(middleware::from_fn_with_state(Arc::new(auth), require_auth))
}

async fn require_auth(State(auth): State<Arc<BasicAuth>>, req: Request, next: Next) -> Response {
    let allowed = match credentials(req.headers()) {
        Some((user, password)) => auth.check(user, password).await,
        None => false,
    };
    if allowed {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic")],
            "Unauthorized\n",
        )
            .into_response()
    }
}

fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Checks basic-auth credentials against bcrypt hashes, remembering verdicts.
struct BasicAuth {
    users: Mutex<Arc<BTreeMap<String, String>>>,
    verdicts: Mutex<HashMap<[u8; 32], bool>>,
    capacity: usize,
    /// The web config file and its last seen stamp, as exporter-toolkit re-reads users.
    file: Option<(PathBuf, Mutex<Stamp>)>,
}

impl BasicAuth {
    fn new(users: BTreeMap<String, String>) -> Self {
        Self::with_capacity(users, AUTH_CACHE_ENTRIES)
    }

    fn with_capacity(users: BTreeMap<String, String>, capacity: usize) -> Self {
        BasicAuth {
            users: Mutex::new(Arc::new(users)),
            verdicts: Mutex::new(HashMap::new()),
            capacity,
            file: None,
        }
    }

    async fn check(&self, user: String, password: String) -> bool {
        self.reload_users_if_changed();
        let key = cache_key(&user, &password);
        if let Some(&verdict) = self.lock().get(&key) {
            return verdict;
        }
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // bcrypt is deliberately slow: keep it off the threads that serve scrapes.
        let verdict = tokio::task::spawn_blocking(move || verify(&users, &user, &password))
            .await
            .unwrap_or(false);
        let mut verdicts = self.lock();
        if verdicts.len() >= self.capacity {
            // Any entry will do: the map's hashing is randomly keyed, so no client can choose
            // which one goes.
            if let Some(victim) = verdicts.keys().next().copied() {
                verdicts.remove(&victim);
            }
        }
        verdicts.insert(key, verdict);
        verdict
    }

    /// One `stat` per request buys password changes without a restart. A file that no longer
    /// validates keeps the old users (and is reported once per change, not per request).
    fn reload_users_if_changed(&self) {
        let Some((path, seen)) = &self.file else {
            return;
        };
        let now = stamp(path);
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if now == *seen {
            return;
        }
        *seen = now;
        match WebConfig::load(path) {
            Ok(web) => {
                *self.users.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(web.users.0);
                // Verdicts were for the old hashes.
                self.lock().clear();
                info!("web config changed: basic-auth users reloaded");
            }
            Err(e) => {
                warn!(error = %e, "web config changed but is invalid; keeping the previous users")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        self.verdicts.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.lock().len()
    }
}

fn verify(users: &BTreeMap<String, String>, user: &str, password: &str) -> bool {
    match users.get(user) {
        Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
        None => {
            // An unknown user costs the same bcrypt as a known one, so timing does not tell
            // which user names exist.
            if let Some(any) = users.values().next() {
                let _ = bcrypt::verify(password, any);
            }
            false
        }
    }
}

/// A digest, not the password itself, is what stays in memory; the user name is length-prefixed
/// so `("ab", "c")` and `("a", "bc")` differ.
fn cache_key(user: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(user.len() as u64).to_le_bytes());
    ctx.update(user.as_bytes());
    ctx.update(password.as_bytes());
    let mut key = [0; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_decode_and_other_schemes_are_ignored() {
        let mut headers = HeaderMap::new();
        // "alice:pa:ss" — the password may itself contain colons.
        headers.insert(
            header::AUTHORIZATION,
            "basic YWxpY2U6cGE6c3M=".parse().unwrap(),
        );
        assert_eq!(
            credentials(&headers),
            Some(("alice".into(), "pa:ss".into()))
        );
        headers.insert(
            header::AUTHORIZATION,
            "Bearer YWxpY2U6cGE6c3M=".parse().unwrap(),
        );
        assert_eq!(credentials(&headers), None);
    }

    #[tokio::test]
    async fn the_verdict_cache_is_bounded() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let auth = BasicAuth::with_capacity(BTreeMap::from([("u".to_string(), hash)]), 16);
        assert!(auth.check("u".into(), "right".into()).await);
        assert!(!auth.check("nobody".into(), "right".into()).await);
        for i in 0..20 {
            assert!(!auth.check("u".into(), format!("wrong{i}")).await);
        }
        assert_eq!(auth.cached(), 16);
    }
}
