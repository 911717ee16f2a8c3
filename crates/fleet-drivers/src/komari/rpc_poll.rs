//! Which source a poll reads (`source = "auto" | "rpc" | "ws"`), and the poll over JSON-RPC.
//!
//! `auto` asks the version once (`GET /api/version`, public even on private sites) and uses RPC
//! on 1.0.7 and later, and on source builds whose version says nothing; it falls back to the
//! WebSocket path when the server has no `/api/rpc2` (404/405) or no
//! `common:getNodesLatestStatus` (`-32601`), and tries RPC again once the server reports
//! another version. `rpc` and `ws` never switch: on `rpc` those answers are errors.
//!
//! An RPC poll is one batch: the latest status every poll; on the node list's cadence (or when a
//! node appears that the list does not describe) the version, the node list, the ping tasks
//! (1.2.5+) and, with `ping_stats_hours`, the ping percentiles (1.2.6+) in the same batch. The
//! status is required; the rest cost only their own series, and a method the server turns out
//! not to have is not asked again. Ping statistics of every online node come with the status.
//! GPU details and agent messages are not in the status: `websocket_detail` adds the
//! WebSocket's `get` to the poll for them.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::metrics;
use super::model::{Live, Node, PingTask, Version};
use super::rpc::{self, BatchError, Call, CallError, Method, Replies, ServerVersion};
use super::rpc_model::{
    LatestStatus, NodePings, Nodes, PingMetricStat, PingMetricStats, PingTasks, RpcPingTask,
};
use super::{KomariDriver, SECTIONS};
use crate::util::{check_series, lenient, Sections};
use fleet_core::driver::{PollContext, PollError};
use fleet_core::snapshot::Snapshot;

/// The `source` option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum SourceChoice {
    #[default]
    Auto,
    Rpc,
    Ws,
}

impl<'de> Deserialize<'de> for SourceChoice {
    /// Errors name the key: serde's own message for an unknown variant would not.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "auto" => Ok(SourceChoice::Auto),
            "rpc" => Ok(SourceChoice::Rpc),
            "ws" => Ok(SourceChoice::Ws),
            _ => Err(serde::de::Error::custom(format!(
                "source: {text:?} is not one of \"auto\", \"rpc\", \"ws\""
            ))),
        }
    }
}

/// What the RPC side remembers between polls.
#[derive(Debug, Default)]
pub(super) struct RpcState {
    /// `auto` fell back to the WebSocket while the server reported this version.
    fell_back: Option<String>,
    /// `auto` has asked `GET /api/version` once; after that the node list refreshes read it.
    asked_version: bool,
    /// Optional methods the server answered `-32601` for.
    missing: Vec<Method>,
    /// The last `public:getPublicPingTasks` answer.
    tasks: Vec<RpcPingTask>,
    /// The last `public:getPingMetricStats` answer.
    percentiles: Vec<PingMetricStat>,
}

/// The typed answers of one batch (`None`: not asked).
#[derive(Default)]
struct Answers {
    status: Option<Result<(Live, NodePings), CallError>>,
    version: Option<Result<Version, CallError>>,
    nodes: Option<Result<Vec<Node>, CallError>>,
    tasks: Option<Result<PingTasks, CallError>>,
    percentiles: Option<Result<PingMetricStats, CallError>>,
}

impl KomariDriver {
    /// Whether this poll reads node state over RPC; `auto` asks the version on its first poll.
    pub(super) async fn rpc_chosen(&mut self, ctx: &mut PollContext) -> bool {
        match self.opts.source {
            SourceChoice::Ws => return false,
            SourceChoice::Rpc => return true,
            SourceChoice::Auto => {}
        }
        let version_text = self.version.as_ref().map(|v| v.version.clone());
        if let Some(at) = &self.rpc.fell_back {
            if version_text.as_deref().unwrap_or("") == at.as_str() {
                return false;
            }
            // Another version than the one that had no RPC: worth asking again.
            self.rpc.fell_back = None;
        }
        if self.version.is_none() && !self.rpc.asked_version {
            self.rpc.asked_version = true;
            match self.client.get::<Version>(ctx, "api/version").await {
                Ok(v) => self.version = Some(v),
                // The WebSocket path serves this poll and reads the version with its node list.
                Err(e) => tracing::debug!(target = %ctx.target(), "version unknown: {e}"),
            }
        }
        self.version
            .as_ref()
            .is_some_and(|v| Method::LatestStatus.offered_by(ServerVersion::parse(&v.version)))
    }

    /// One poll over RPC; `Ok(None)` when `auto` learned the server has no RPC and this poll
    /// should take the WebSocket path.
    pub(super) async fn poll_rpc(
        &mut self,
        ctx: &mut PollContext,
    ) -> Result<Option<Snapshot>, PollError> {
        let mut sections = Sections::new(SECTIONS);
        if self.nodes.scheduled() {
            self.unlisted.clear();
        }
        let metadata = self.nodes.due();
        let mut answers = match self.batch(ctx, self.calls(metadata)).await {
            Err(BatchError::NoRpc(e)) if self.opts.source == SourceChoice::Auto => {
                self.fall_back(ctx, &e);
                return Ok(None);
            }
            Err(e) => return Err(e.into_poll_error()),
            Ok(answers) => answers,
        };
        let (mut live, pings) = match answers.status.take() {
            Some(Err(CallError::MethodNotFound(m))) if self.opts.source == SourceChoice::Auto => {
                self.fall_back(ctx, &PollError::api(format!("{m}: method not found")));
                return Ok(None);
            }
            status => sections.required(taken(Method::LatestStatus, status))?,
        };
        if let Some(v) = answers.version.take() {
            if let Some(v) = sections.record(v.map_err(CallError::into_poll_error))? {
                self.version = Some(v);
            }
        }
        if let Some(nodes) = answers.nodes.take() {
            if let Some(nodes) = sections.record(nodes.map_err(CallError::into_poll_error))? {
                self.store_nodes(nodes, &live);
            }
        } else if self.has_unknown_node(&live) {
            // A node the list does not describe: its description now, not at the next refresh.
            let nodes = match self.batch(ctx, vec![Call::new(Method::Nodes)]).await {
                Ok(mut more) => taken(Method::Nodes, more.nodes.take()),
                Err(e) => Err(e.into_poll_error()),
            };
            if let Some(nodes) = sections.record(nodes)? {
                self.store_nodes(nodes, &live);
            }
        }
        if let Some(tasks) = answers.tasks.take() {
            if let Some(t) = self.optional(&mut sections, Method::PingTasks, tasks)? {
                self.rpc.tasks = t.0;
            }
        }
        if let Some(stats) = answers.percentiles.take() {
            if let Some(s) = self.optional(&mut sections, Method::PingMetricStats, stats)? {
                self.rpc.percentiles = s.0;
            }
        }
        self.nodes.tick();
        if self.opts.websocket_detail {
            if let Some(ws) = sections.record(self.client.live(ctx).await)? {
                merge_websocket_detail(&mut live, ws);
            }
        }

        let mut b = ctx.snapshot_builder();
        self.node_series(&mut b, &live);
        if self.opts.ping {
            metrics::rpc_pings(&mut b, &pings);
            metrics::ping_tasks(&mut b, &self.task_infos(&pings), 0);
            // The online set only where there are percentiles to export (`ping_stats_hours`).
            if !self.rpc.percentiles.is_empty() {
                let online: HashSet<&str> = live.online.iter().map(String::as_str).collect();
                metrics::ping_percentiles(&mut b, &self.rpc.percentiles, &online);
            }
        }
        metrics::reconnects(&mut b, self.client.reconnects());
        metrics::source(&mut b, "rpc");
        drop(live);
        self.client.finish_poll(ctx);
        sections.finish(ctx, false)?;
        check_series(b.finish(), self.opts.max_series).map(Some)
    }

    /// This poll's calls: the status, and with `metadata` what changes slowly.
    fn calls(&self, metadata: bool) -> Vec<Call> {
        let mut calls = vec![Call::new(Method::LatestStatus)];
        if !metadata {
            return calls;
        }
        calls.extend([Call::new(Method::Version), Call::new(Method::Nodes)]);
        if self.opts.ping && self.offers(Method::PingTasks) {
            calls.push(Call::new(Method::PingTasks));
        }
        if self.opts.ping && self.opts.ping_stats_hours > 0 && self.offers(Method::PingMetricStats)
        {
            let mut stats = Call::new(Method::PingMetricStats);
            stats.params = Some(json!({"hours": self.opts.ping_stats_hours}));
            calls.push(stats);
        }
        calls
    }

    /// Whether to ask for an optional method: the server's version has it and it has not
    /// answered `-32601`.
    fn offers(&self, method: Method) -> bool {
        let version = self
            .version
            .as_ref()
            .and_then(|v| ServerVersion::parse(&v.version));
        method.offered_by(version) && !self.rpc.missing.contains(&method)
    }

    /// An optional method's answer; `-32601` marks it missing (not an error), other failures
    /// cost its section.
    fn optional<T>(
        &mut self,
        sections: &mut Sections,
        method: Method,
        answer: Result<T, CallError>,
    ) -> Result<Option<T>, PollError> {
        match answer {
            Err(CallError::MethodNotFound(_)) => {
                self.rpc.missing.push(method);
                Ok(None)
            }
            other => sections.record(other.map_err(CallError::into_poll_error)),
        }
    }

    fn fall_back(&mut self, ctx: &PollContext, why: &PollError) {
        tracing::info!(
            target = %ctx.target(),
            "the server has no JSON-RPC source ({why}); reading the WebSocket instead"
        );
        let version = self.version.as_ref().map(|v| v.version.clone());
        self.rpc.fell_back = Some(version.unwrap_or_default());
    }

    /// Sends `calls` as one batch and decodes every answer (off the async runtime when the
    /// body is large).
    async fn batch(
        &mut self,
        ctx: &mut PollContext,
        calls: Vec<Call>,
    ) -> Result<Answers, BatchError> {
        let body = rpc::batch_body(&calls);
        let (status, body) = self
            .client
            .post_json(ctx, rpc::PATH, body)
            .await
            .map_err(BatchError::Failed)?;
        let body = rpc::accepted(status, body)?;
        let methods: Vec<Method> = calls.iter().map(|c| c.method).collect();
        self.client
            .decode(body, move |b| {
                // In one pass where the answer allows; the rows it cut count only when its
                // reading is the one kept.
                let (in_place, cut) = lenient::with_row_cap(lenient::row_cap(), || {
                    rpc::read_in_place::<Answers>(&methods, b)
                });
                if let Some(answers) = in_place {
                    lenient::note_cut(cut);
                    return Ok(answers);
                }
                let mut replies = Replies::parse(methods, b)?;
                Ok(Answers {
                    status: replies
                        .take::<LatestStatus>(Method::LatestStatus)
                        .map(|s| s.map(LatestStatus::into_live)),
                    version: replies.take(Method::Version),
                    nodes: replies
                        .take::<Nodes>(Method::Nodes)
                        .map(|n| n.map(Nodes::into_list)),
                    tasks: replies.take(Method::PingTasks),
                    percentiles: replies.take(Method::PingMetricStats),
                })
            })
            .await
            .map_err(BatchError::Failed)?
            .map_err(BatchError::Failed)
    }

    /// Ping tasks by id: the names the statistics carry, with names and intervals from
    /// `public:getPublicPingTasks` where the server has it (older ones give no interval).
    fn task_infos(&self, pings: &NodePings) -> BTreeMap<String, PingTask> {
        let mut tasks = BTreeMap::new();
        for (id, stat) in pings.iter().flat_map(|(_, by_task)| by_task) {
            if !tasks.contains_key(id) {
                let task = PingTask {
                    id: id.clone(),
                    name: stat.name.clone(),
                    interval: String::new(),
                };
                tasks.insert(id.clone(), task);
            }
        }
        for t in self.rpc.tasks.iter().filter(|t| !t.id.is_empty()) {
            tasks.insert(
                t.id.clone(),
                PingTask {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    interval: t.interval.clone(),
                },
            );
        }
        tasks
    }
}

impl rpc::Results for Answers {
    fn read<'de, D: Deserializer<'de>>(&mut self, method: Method, d: D) -> Result<(), D::Error> {
        match method {
            Method::LatestStatus => {
                self.status = Some(Ok(answer::<LatestStatus, D>(d)?.into_live()));
            }
            Method::Version => self.version = Some(Ok(answer(d)?)),
            Method::Nodes => self.nodes = Some(Ok(answer::<Nodes, D>(d)?.into_list())),
            Method::PingTasks => self.tasks = Some(Ok(answer(d)?)),
            Method::PingMetricStats => self.percentiles = Some(Ok(answer(d)?)),
        }
        Ok(())
    }

    fn failed(&mut self, method: Method, e: CallError) {
        match method {
            Method::LatestStatus => self.status = Some(Err(e)),
            Method::Version => self.version = Some(Err(e)),
            Method::Nodes => self.nodes = Some(Err(e)),
            Method::PingTasks => self.tasks = Some(Err(e)),
            Method::PingMetricStats => self.percentiles = Some(Err(e)),
        }
    }
}

/// A result as its type; `null` is the empty answer.
fn answer<'de, T: Deserialize<'de> + Default, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The answer of a call that was in the batch, as a poll result.
fn taken<T>(method: Method, answer: Option<Result<T, CallError>>) -> Result<T, PollError> {
    answer
        .unwrap_or(Err(CallError::Missing(method.name())))
        .map_err(CallError::into_poll_error)
}

/// What only the WebSocket reports (GPU details, agent messages) added to the RPC reports.
fn merge_websocket_detail(live: &mut Live, ws: Live) {
    for (uuid, report) in ws.data {
        if let Some(r) = live.data.get_mut(&uuid) {
            r.gpu = report.gpu;
            if r.message.is_none() {
                r.message = report.message;
            }
        }
    }
}
