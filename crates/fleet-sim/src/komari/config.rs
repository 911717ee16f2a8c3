//! What a test or the demo chooses before starting a Komari simulator: node counts, ping tasks,
//! access (private site, API key, login, Origin check), version (which decides the JSON-RPC
//! methods), injected RPC errors, quirks and seed, and the HTTP
//! and WebSocket faults it can switch on afterwards. Plain data; nothing here runs.

/// A failure injected into the HTTP API answers (`/api/login` and `/api/version` excepted), or
/// an answer built to amplify (the last two, which leave every other answer as it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Accept the request and never answer (until the simulator is dropped).
    Hang,
    /// Cut the JSON body in half.
    Truncated,
    /// An HTML error page with status 200, as a reverse proxy sends.
    Html,
    /// HTTP 500.
    Status500,
    /// The WebSocket `get` reply lists a million more online ids (about 7 MB) after the real
    /// nodes' own, none of them a node the server describes.
    MillionOnline,
    /// `GET /api/nodes` answers about 8 MB of empty node entries `{}`.
    HugeNodeList,
}

/// A failure injected into WebSocket replies to `get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsFault {
    None,
    /// Read `get` and never answer: a silent socket.
    Silent,
    /// Answer with a close frame instead of the data.
    Close,
    /// Answer `{"status":"error","error":"Invalid message"}`.
    Error,
    /// Answer with a text frame that is not JSON.
    NotJson,
    /// Refuse upgrades with HTTP 502 (a proxy whose backend is down).
    RefuseUpgrade,
}

#[derive(Clone, Debug)]
pub struct KomariSimConfig {
    /// Monitored nodes.
    pub nodes: usize,
    /// The last this many nodes are offline (their last report stays in the data).
    pub offline: usize,
    /// Ping tasks; every other node (even indices) is a target of all of them.
    pub ping_tasks: usize,
    /// A node whose probes lose one in four, the newest among them, if any.
    pub lossy_node: Option<usize>,
    /// Private site: everything but `/api/version` needs an API key or a session.
    pub private: bool,
    /// Accepted as `Authorization: Bearer <key>` (a full admin credential).
    pub api_key: Option<String>,
    pub username: String,
    pub password: String,
    /// Refuse WebSocket upgrades without a matching `Origin` (servers since 1.0.5).
    pub require_origin: bool,
    pub version: String,
    /// Older-server shapes: missing fields, nulls, the three time formats, `detailed_info:
    /// null`, a hostile node name. Off gives clean, complete JSON.
    pub quirks: bool,
    pub seed: u64,
    /// Every node, not every other one, is a target of the ping tasks.
    pub ping_all_nodes: bool,
    /// A node whose agent reports an error text in its `message`.
    pub agent_error_node: Option<usize>,
    /// A long-term node whose `expired_at` is two centuries away.
    pub forever_node: Option<usize>,
    /// JSON-RPC methods answered with this error code instead of their result (`-32601` makes a
    /// server without the method, `-32041` one that refuses it). `/api/rpc2` itself exists from
    /// `version` 1.0.7 on (and on source builds, `dev`); older versions answer 404.
    pub rpc_errors: Vec<(&'static str, i64)>,
}

impl Default for KomariSimConfig {
    fn default() -> Self {
        KomariSimConfig {
            nodes: 6,
            offline: 1,
            ping_tasks: 2,
            lossy_node: Some(2),
            private: false,
            api_key: None,
            username: "admin".into(),
            password: "admin".into(),
            require_origin: true,
            version: "1.0.7".into(),
            quirks: true,
            seed: 1,
            ping_all_nodes: false,
            agent_error_node: None,
            forever_node: None,
            rpc_errors: Vec::new(),
        }
    }
}
