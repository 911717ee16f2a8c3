//! Komari servers: every monitored node's live state, node descriptions on a slower schedule,
//! ping loss and latency, and the server version; over JSON-RPC (`POST /api/rpc2`, servers
//! 1.0.7 and later, `rpc_poll.rs`) or over the `/api/clients` WebSocket and the REST calls, as
//! the `source` option and the server's version say.
//!
//! A WebSocket poll fetches, then maps: the WebSocket `get` (the live state, required: when it fails, so
//! does the poll), then the node list every `nodes_every` polls or when a node appears that it
//! does not describe, the version with it, then ping records of online nodes. A failed node
//! list, version or ping section costs only its own series.

mod client;
pub mod metrics;
pub mod model;
mod rpc;
pub mod rpc_model;
mod rpc_poll;
mod socket;
mod words;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;

use self::client::{Auth, KomariClient};
use self::metrics::NodeWords;
use self::model::{Live, Node, PingRecords, PingSummary, PingTask, Version};
use self::rpc_poll::{RpcState, SourceChoice};
use crate::util::{check_series, with_context, Cached, OnFatal, Policy, Sections};
use fleet_core::config::{Secret, TargetSpec};
use fleet_core::driver::{factory, Driver, DriverFactory, Kind, PollContext, PollError};
use fleet_core::snapshot::{Snapshot, SnapshotBuilder};

pub(crate) const KIND: Kind = Kind {
    name: "komari",
    secret_keys: &["api_key", "password"],
    families: metrics::FAMILIES,
    configure,
};

/// The server checks API keys for this length (notes).
const MIN_API_KEY_LEN: usize = 12;
/// The longest ping percentile window asked for.
const MAX_PING_STATS_HOURS: u64 = 720;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Private sites: a Komari API key (a full admin credential), sent as a Bearer token.
    api_key: Option<Secret>,
    /// Private sites, alternatively: a password login (each login notifies the owner).
    username: Option<String>,
    password: Option<Secret>,
    /// Allow credentials over plain `http://`.
    #[serde(default)]
    allow_insecure_auth: bool,
    /// Where node state comes from: `auto` (JSON-RPC on servers that have it, else the
    /// WebSocket), `rpc` or `ws`.
    #[serde(default)]
    source: SourceChoice,
    /// With the RPC source, also ask the WebSocket every poll for what RPC leaves out: GPU
    /// details and agents' error messages.
    #[serde(default)]
    websocket_detail: bool,
    /// Hours of ping percentiles (p50, p99) to ask servers 1.2.6+ for, with the node list;
    /// 0 (the default) asks none.
    #[serde(default)]
    ping_stats_hours: u64,
    /// The node list and version are fetched every this many polls (and on unknown nodes).
    #[serde(default = "default_nodes_every")]
    nodes_every: u64,
    /// Fetch ping records.
    #[serde(default = "default_true")]
    ping: bool,
    /// Ping records are fetched for at most this many online nodes per poll (one call each).
    #[serde(default = "default_ping_max_nodes")]
    ping_max_nodes: usize,
    /// Ping record calls in flight at once.
    #[serde(default = "default_ping_concurrency")]
    ping_concurrency: usize,
    /// The WebSocket is replaced after this long even when healthy.
    #[serde(
        default = "default_ws_max_age",
        deserialize_with = "fleet_core::config::deserialize_duration"
    )]
    ws_max_age: Duration,
    /// Entries read per list of one answer (nodes, online ids, reports, ping records); the rest
    /// are skipped unread and counted as `limit`.
    #[serde(default = "default_max_rows")]
    max_rows: usize,
    /// Distinct values the server's own words keep per label (traffic limit `type`, price
    /// `currency`); later new ones count as `other`.
    #[serde(default = "default_max_label_values")]
    max_label_values: usize,
    /// Series the target's snapshot may hold; past it the poll fails with `limit`. 0: no bound.
    #[serde(default = "crate::util::default_max_series")]
    max_series: usize,
}

fn default_max_rows() -> usize {
    10_000
}
fn default_max_label_values() -> usize {
    crate::util::DEFAULT_MAX_LABEL_VALUES
}
fn default_nodes_every() -> u64 {
    10
}
fn default_true() -> bool {
    true
}
fn default_ping_max_nodes() -> usize {
    500
}
fn default_ping_concurrency() -> usize {
    8
}
fn default_ws_max_age() -> Duration {
    Duration::from_secs(300)
}

fn configure(spec: &TargetSpec) -> Result<DriverFactory, String> {
    let opts: Options = spec.driver_options()?;
    let auth = match (
        opts.api_key.clone(),
        opts.username.clone(),
        opts.password.clone(),
    ) {
        (None, None, None) => Auth::Anonymous,
        (Some(key), None, None) => {
            if key.expose().len() < MIN_API_KEY_LEN {
                return Err(format!(
                    "api_key: Komari API keys are at least {MIN_API_KEY_LEN} characters"
                ));
            }
            Auth::ApiKey(key)
        }
        (None, Some(username), Some(password)) => Auth::Login { username, password },
        (Some(_), _, _) => {
            return Err("set either api_key or username and password, not both".into())
        }
        (None, _, _) => return Err("username and password go together".into()),
    };
    if !matches!(auth, Auth::Anonymous) && spec.url.scheme() == "http" && !opts.allow_insecure_auth
    {
        return Err(
            "refusing to send credentials to an http:// URL; use https:// or set allow_insecure_auth = true"
                .into(),
        );
    }
    if opts.nodes_every == 0 {
        return Err("nodes_every: must be at least 1".into());
    }
    if opts.ping_concurrency == 0 {
        return Err("ping_concurrency: must be at least 1".into());
    }
    if opts.ping_stats_hours > MAX_PING_STATS_HOURS {
        return Err(format!(
            "ping_stats_hours: at most {MAX_PING_STATS_HOURS} (a month); servers keep a day by default"
        ));
    }
    crate::util::check_max_rows(opts.max_rows)?;
    let opts = Arc::new(opts);
    let (url, timeout) = (spec.url.clone(), spec.timeout);
    Ok(factory(move || {
        let client = KomariClient::new(&url, auth.clone(), timeout, opts.ws_max_age, opts.max_rows);
        KomariDriver {
            client,
            nodes: Cached::new(opts.nodes_every),
            opts: opts.clone(),
            version: None,
            unlisted: HashSet::new(),
            words: NodeWords::new(opts.max_label_values),
            rpc: RpcState::default(),
        }
    }))
}

struct KomariDriver {
    client: KomariClient,
    opts: Arc<Options>,
    /// The last node list, re-exported between its refreshes.
    nodes: Cached<Vec<Node>>,
    /// The server version, read with the node list.
    version: Option<Version>,
    /// Uuids the last node list did not describe even though it was fetched for them; waiting
    /// for the next scheduled refresh rather than refetching on every poll.
    unlisted: HashSet<String>,
    /// The server's words seen in labels so far, each label capped.
    words: NodeWords,
    rpc: RpcState,
}

/// The live state is the poll's one required section; past it, no failure says the server as a
/// whole is gone, so every other section is asked.
const SECTIONS: Policy = Policy {
    fatal: &[],
    on_fatal: OnFatal::EndPoll,
};

/// Ping records of one poll, summarized per node as they arrive.
struct Pings {
    by_node: BTreeMap<String, BTreeMap<String, PingSummary>>,
    tasks: BTreeMap<String, PingTask>,
    /// Online nodes left out by `ping_max_nodes`.
    omitted: usize,
}

impl Driver for KomariDriver {
    async fn poll(&mut self, ctx: &mut PollContext) -> Result<Snapshot, PollError> {
        self.client.begin_poll();
        if self.rpc_chosen(ctx).await {
            if let Some(snapshot) = self.poll_rpc(ctx).await? {
                return Ok(snapshot);
            }
        }
        let mut sections = Sections::new(SECTIONS);
        // Without the live state there is nothing current to serve: node descriptions alone
        // would be stale series, so the poll fails with the live state's reason.
        let live = sections.required(self.client.live(ctx).await)?;
        if self.nodes.scheduled() {
            self.unlisted.clear();
        }
        if self.has_unknown_node(&live) {
            self.nodes.expire();
        }
        if self.nodes.due() {
            // Public even on private sites; a failure here is worth a log line, not the list.
            let version = self.client.get::<Version>(ctx, "api/version").await;
            if let Some(v) = sections.record(version)? {
                self.version = Some(v);
            }
            sections.record(self.refresh_nodes(ctx, &live).await)?;
        }
        self.nodes.tick();
        let pings = if self.opts.ping {
            let (pings, failed) = self.pings(&live).await;
            sections.record(failed)?;
            Some(pings)
        } else {
            None
        };

        let mut b = ctx.snapshot_builder();
        self.node_series(&mut b, &live);
        if let Some(p) = &pings {
            metrics::pings(&mut b, &p.by_node, &p.tasks, p.omitted);
        }
        metrics::reconnects(&mut b, self.client.reconnects());
        metrics::source(&mut b, "websocket");
        drop(live);
        self.client.finish_poll(ctx);
        sections.finish(ctx, false)?;
        check_series(b.finish(), self.opts.max_series)
    }
}

impl KomariDriver {
    /// The last node list, empty before the first.
    /// The series both sources share: every node's, the label caps' tally and the server's
    /// version.
    fn node_series(&mut self, b: &mut SnapshotBuilder, live: &Live) {
        let listed = self.nodes.get().map_or(&[][..], Vec::as_slice);
        metrics::nodes(b, listed, Some(live), &mut self.words);
        self.words.export(b);
        if let Some(v) = &self.version {
            metrics::build_info(b, v);
        }
    }

    fn listed(&self) -> &[Node] {
        self.nodes.get().map_or(&[], Vec::as_slice)
    }

    fn has_unknown_node(&self, live: &Live) -> bool {
        let listed: HashSet<&str> = self.listed().iter().map(|n| n.uuid.as_str()).collect();
        live.data
            .keys()
            .chain(&live.online)
            .any(|u| !listed.contains(u.as_str()) && !self.unlisted.contains(u))
    }

    async fn refresh_nodes(&mut self, ctx: &mut PollContext, live: &Live) -> Result<(), PollError> {
        let nodes: Vec<Node> = self.client.get(ctx, "api/nodes").await?;
        self.store_nodes(nodes, live);
        Ok(())
    }

    /// Keeps a fresh node list, and the uuids of `live` it does not describe. Kept until the next
    /// refresh: only rows that describe a node (a list padded with empty entries must not be held
    /// between polls).
    fn store_nodes(&mut self, mut nodes: Vec<Node>, live: &Live) {
        nodes.retain(|n| !n.uuid.is_empty());
        let listed: HashSet<&str> = nodes.iter().map(|n| n.uuid.as_str()).collect();
        self.unlisted = live
            .data
            .keys()
            .chain(&live.online)
            .filter(|u| !listed.contains(u.as_str()))
            .cloned()
            .collect();
        self.nodes.store(nodes);
    }

    /// Ping records of up to `ping_max_nodes` online nodes (in uuid order, so the same nodes stay
    /// in), several calls at once. Failed calls count as one failed section.
    async fn pings(&self, live: &Live) -> (Pings, Result<(), PollError>) {
        let mut online: Vec<String> = live.online.clone();
        online.sort_unstable();
        online.dedup();
        let omitted = online.len().saturating_sub(self.opts.ping_max_nodes);
        online.truncate(self.opts.ping_max_nodes);
        let client = &self.client;
        let mut answers = futures_util::stream::iter(online)
            .map(|uuid: String| async move {
                let path = format!("api/records/ping?uuid={}&hours=1", encode(&uuid));
                let answer = client.fetch::<PingRecords>(&path).await;
                (uuid, answer)
            })
            .buffer_unordered(self.opts.ping_concurrency);
        let mut pings = Pings {
            by_node: BTreeMap::new(),
            tasks: BTreeMap::new(),
            omitted,
        };
        let (mut errors, mut first_error) = (0usize, None);
        while let Some((uuid, answer)) = answers.next().await {
            match answer {
                Ok(records) => {
                    let summary = records.summarize();
                    if !summary.is_empty() {
                        pings.by_node.insert(uuid, summary);
                    }
                    for t in records.tasks.into_iter().filter(|t| !t.id.is_empty()) {
                        pings.tasks.entry(t.id.clone()).or_insert(t);
                    }
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        let failed = match first_error {
            Some(e) => Err(with_context(
                e,
                &format!("ping records of {errors} node(s)"),
            )),
            None => Ok(()),
        };
        (pings, failed)
    }
}

/// Uuids are hex and dashes; anything else is percent-encoded so it cannot bend the query.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use fleet_core::config::{Config, FileFormat};

    fn check(extra: &str, url: &str) -> Result<(), String> {
        let text =
            format!("[[targets]]\nname = \"k\"\nkind = \"komari\"\nurl = \"{url}\"\n{extra}\n");
        Config::parse(
            &text,
            FileFormat::Toml,
            Path::new("/nonexistent"),
            crate::KINDS,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    #[test]
    fn options_are_checked_and_secrets_stay_out_of_errors() {
        assert_eq!(check("", "https://status.example.com"), Ok(()));
        assert_eq!(
            check("api_key = \"0123456789abcdef\"", "https://s.example"),
            Ok(())
        );
        let e = check("api_key = \"0123456789abcdef\"", "http://s.example").unwrap_err();
        assert!(
            e.contains("allow_insecure_auth") && !e.contains("0123456789abcdef"),
            "{e}"
        );
        assert_eq!(
            check(
                "api_key = \"0123456789abcdef\"\nallow_insecure_auth = true",
                "http://s.example"
            ),
            Ok(())
        );
        let e = check("api_key = \"short\"", "https://s.example").unwrap_err();
        assert!(e.contains("at least 12") && !e.contains("short\""), "{e}");
        let e = check("username = \"admin\"", "https://s.example").unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let e = check(
            "api_key = \"0123456789abcdef\"\nusername = \"a\"\npassword = \"b\"",
            "https://s.example",
        )
        .unwrap_err();
        assert!(e.contains("not both"), "{e}");
        let e = check("pingg = true", "https://s.example").unwrap_err();
        assert!(e.contains("pingg"), "{e}");
        assert_eq!(
            check("ws_max_age = \"2m\"\nnodes_every = 3", "https://s.example"),
            Ok(())
        );
        assert!(check("ws_max_age = \"soon\"", "https://s.example").is_err());
    }

    #[test]
    fn source_and_ping_stats_options_are_checked_and_named() {
        for ok in [
            "source = \"auto\"",
            "source = \"rpc\"\nwebsocket_detail = true",
            "source = \"ws\"",
            "ping_stats_hours = 24",
        ] {
            assert_eq!(check(ok, "https://s.example"), Ok(()), "{ok}");
        }
        let e = check("source = \"grpc\"", "https://s.example").unwrap_err();
        assert!(e.contains("source") && e.contains("grpc"), "{e}");
        let e = check("ping_stats_hours = 9999", "https://s.example").unwrap_err();
        assert!(e.contains("ping_stats_hours"), "{e}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let text = "[[targets]]\nname = \"k\"\nkind = \"komari\"\nurl = \"https://s.example\"\nusername = \"admin\"\npassword = \"hunter2-very-secret\"\n";
        let c = Config::parse(
            text,
            FileFormat::Toml,
            Path::new("/nonexistent"),
            crate::KINDS,
        )
        .unwrap();
        let opts: super::Options = c.targets[0].spec.driver_options().unwrap();
        let shown = format!("{opts:?} {c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let (config, spec) =
            crate::util::testing::config_debug("komari", "api_key = \"Km-debug-secret-key\"");
        let opts: super::Options = spec.driver_options().unwrap();
        let shown = format!("{config} {spec:?} {opts:?}");
        crate::util::testing::assert_redacted(&shown, "Km-debug-secret-key");
        let auth = [
            super::client::Auth::ApiKey(fleet_core::config::Secret::new("Km-debug-secret-key")),
            super::client::Auth::Login {
                username: "admin".into(),
                password: fleet_core::config::Secret::new("Km-debug-secret-key"),
            },
        ];
        crate::util::testing::assert_redacted(&format!("{auth:?}"), "Km-debug-secret-key");
    }
}
