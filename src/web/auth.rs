//! Basic auth: every path, as exporter-toolkit does, or none when the web config names no users.
//!
//! Policy: passwords are bcrypt hashes, verified off the async threads. Each verdict, right or
//! wrong, is cached under a SHA-256 digest of the presented credentials (never the password
//! itself), in a bounded cache, so a scraper repeating its password costs one bcrypt, not one
//! per request, and a flood of random passwords cannot grow memory. An unknown user costs the
//! same bcrypt as a known one. Users are re-read when the web config file changes; a changed
//! file that does not validate keeps the previous users.
//!
//! A flood of wrong passwords is bounded: one bcrypt runs at a time ([`BCRYPT_AT_ONCE`]), so
//! the flood takes one core at most; a request that has waited [`BCRYPT_WAIT`] for its turn is
//! refused without one. So every answer comes within about a second, and a flooding client that
//! waits for its answers cannot spin either. Right verdicts are kept apart from
//! wrong ones, so a flood of random passwords cannot evict a scraper's: it keeps being
//! answered from memory. (A wrong verdict stays until the users change: it cannot turn right
//! before then, so it is "brief" only in that the bounded cache lets it go.)

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
use tracing::{debug, info, warn};

use super::{stamp, Stamp, WebConfig};

/// Enough for every distinct credential a fleet's scrapers use, small enough that a flood of
/// random passwords cannot grow memory.
const AUTH_CACHE_ENTRIES: usize = 1024;
/// Right credentials remembered, apart from the wrong ones: as many as distinct scrapers.
const ALLOWED_CACHE_ENTRIES: usize = 64;
/// bcrypt checks running at once.
const BCRYPT_AT_ONCE: usize = 1;
/// The longest a check waits for its turn at bcrypt before the request is refused unchecked.
const BCRYPT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// Credentials found right, which wrong ones cannot evict.
    allowed: Mutex<HashMap<[u8; 32], ()>>,
    /// Permits to run bcrypt: [`BCRYPT_AT_ONCE`].
    running: Arc<tokio::sync::Semaphore>,
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
            allowed: Mutex::new(HashMap::new()),
            running: Arc::new(tokio::sync::Semaphore::new(BCRYPT_AT_ONCE)),
            file: None,
        }
    }

    async fn check(&self, user: String, password: String) -> bool {
        self.reload_users_if_changed();
        let key = cache_key(&user, &password);
        if let Some(verdict) = self.remembered(&key) {
            return verdict;
        }
        // A long wait means a flood: refuse without spending a bcrypt.
        let turn = tokio::time::timeout(BCRYPT_WAIT, self.running.clone().acquire_owned());
        let Ok(Ok(permit)) = turn.await else {
            debug!("basic auth: no turn at bcrypt within {BCRYPT_WAIT:?}; refused unchecked");
            return false;
        };
        // The same credentials may have been checked while this one waited.
        if let Some(verdict) = self.remembered(&key) {
            return verdict;
        }
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // bcrypt is deliberately slow: keep it off the threads that serve scrapes. The permit
        // goes with it, so a client that hangs up does not free a slot while bcrypt still runs.
        let verdict = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify(&users, &user, &password)
        })
        .await
        .unwrap_or(false);
        if verdict {
            let mut allowed = self.allowed.lock().unwrap_or_else(|e| e.into_inner());
            if allowed.len() >= ALLOWED_CACHE_ENTRIES {
                allowed.clear();
            }
            allowed.insert(key, ());
            return true;
        }
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

    fn remembered(&self, key: &[u8; 32]) -> Option<bool> {
        let allowed = self.allowed.lock().unwrap_or_else(|e| e.into_inner());
        if allowed.contains_key(key) {
            return Some(true);
        }
        drop(allowed);
        self.lock().get(key).copied()
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
                self.allowed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_wrong_passwords_neither_evicts_a_right_verdict_nor_waits_long() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let auth = Arc::new(BasicAuth::with_capacity(
            BTreeMap::from([("u".to_string(), hash)]),
            16,
        ));
        assert!(auth.check("u".into(), "right".into()).await);
        let flood: Vec<_> = (0..200)
            .map(|i| {
                let auth = auth.clone();
                tokio::spawn(async move {
                    let start = std::time::Instant::now();
                    assert!(!auth.check("u".into(), format!("wrong{i}")).await);
                    start.elapsed()
                })
            })
            .collect();
        // Answered from memory while the flood waits for bcrypt.
        let start = std::time::Instant::now();
        assert!(auth.check("u".into(), "right".into()).await);
        assert!(start.elapsed() < std::time::Duration::from_millis(100));
        for f in flood {
            let waited = f.await.unwrap();
            assert!(waited < BCRYPT_WAIT * 2, "a check waited {waited:?}");
        }
    }
}
