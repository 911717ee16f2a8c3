//! `--shard=I/N` on the binary: three replicas over one config of Komari simulators poll and
//! serve disjoint shares whose union is the config, on `/metrics`, `/sd` and `/probe`; a probe
//! for another shard's target says which shard has it; a reload keeps the shard; bad values are
//! refused naming the flag.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use fleet_sim::komari::{KomariSim, KomariSimConfig};
use serde_json::Value;

use common::binary::{Running, BIN};
use common::{count, temp_dir};

/// `n` Komari targets named `node-NN`, spread over the simulators.
fn config(sims: &[KomariSim], n: usize) -> String {
    let mut text = String::from("[defaults]\ninterval = \"2s\"\ntimeout = \"1s\"\n");
    for i in 0..n {
        let url = sims[i % sims.len()].url();
        text.push_str(&format!(
            "[[targets]]\nname = \"node-{i:02}\"\nkind = \"komari\"\nurl = \"{url}\"\n"
        ));
    }
    text
}

fn names(n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("node-{i:02}")).collect()
}

/// The shares are disjoint and together are the config's `n` targets.
fn assert_partition(shares: &[BTreeSet<String>], n: usize) {
    let union: BTreeSet<String> = shares.iter().flatten().cloned().collect();
    assert_eq!(
        union,
        names(n),
        "the shares do not cover the config: {shares:?}"
    );
    assert_eq!(
        shares.iter().map(BTreeSet::len).sum::<usize>(),
        n,
        "a target is in two shares: {shares:?}"
    );
}

/// The target names a replica's `/sd` lists.
async fn sd_names(replica: &Running) -> BTreeSet<String> {
    let body = replica.get("/sd").await.expect("/sd answers");
    let groups: Value = serde_json::from_str(&body).expect("/sd is JSON");
    groups
        .as_array()
        .expect("a list of groups")
        .iter()
        .map(|g| g["labels"]["target"].as_str().unwrap().to_string())
        .collect()
}

/// The targets whose `fleet_target_up` a replica's `/metrics` shows.
fn metrics_names(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with("fleet_target_up{"))
        .filter_map(|l| l.split("target=\"").nth(1)?.split('"').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_split_the_targets_once_each_and_a_reload_keeps_each_share() {
    let mut sims = Vec::new();
    for seed in 0..3 {
        sims.push(
            KomariSim::start(KomariSimConfig {
                nodes: 2,
                seed,
                ..KomariSimConfig::default()
            })
            .await
            .unwrap(),
        );
    }
    let dir = temp_dir("shard-three");
    let path = dir.join("fleet.toml");
    std::fs::write(&path, config(&sims, 12)).unwrap();
    let file = path.to_str().unwrap();
    let replicas: Vec<Running> = (0..3)
        .map(|i| Running::start(&["--config.file", file, &format!("--shard={i}/3")]))
        .collect();

    let mut shares = Vec::new();
    for (i, replica) in replicas.iter().enumerate() {
        replica.wait_ready(Duration::from_secs(60)).await;
        let metrics = replica
            .wait_for("the shard's info series", |m| {
                m.contains(&format!(
                    "fleet_exporter_shard_info{{shard=\"{i}\",shards=\"3\"}} 1"
                ))
            })
            .await;
        let share = sd_names(replica).await;
        assert_eq!(
            metrics_names(&metrics),
            share,
            "replica {i}: /metrics and /sd differ"
        );
        assert_eq!(
            count(&metrics, "fleet_target_up", &["} 1"]),
            share.len(),
            "replica {i}: not every target of its share is up"
        );
        shares.push(share);
    }
    assert_partition(&shares, 12);
    assert!(
        shares.iter().all(|s| !s.is_empty()),
        "an empty share: {shares:?}"
    );

    // A probe answers for the replica's own targets; for another's it is 404 naming that shard.
    for (i, replica) in replicas.iter().enumerate() {
        let own = shares[i].first().unwrap();
        let (status, body) = replica
            .get_with_status(&format!("/probe?target={own}"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{own} on replica {i}: {body}");
        assert!(
            body.contains(&format!("fleet_target_up{{target=\"{own}\"")),
            "{body}"
        );
        for (j, theirs) in shares.iter().enumerate().filter(|(j, _)| *j != i) {
            let name = theirs.first().unwrap();
            let (status, body) = replica
                .get_with_status(&format!("/probe?target={name}"))
                .await
                .unwrap();
            assert_eq!(status, 404, "{name} on replica {i}");
            assert_eq!(
                body,
                format!(
                    "target \"{name}\" is polled by shard {j}/3, not by this replica (shard {i}/3)\n"
                )
            );
        }
        let (status, body) = replica
            .get_with_status("/probe?target=nobody")
            .await
            .unwrap();
        assert_eq!(
            (status, body.as_str()),
            (404, "unknown target \"nobody\"\n")
        );
    }

    // Six more targets, and a file asking for no sharding: each replica keeps its shard, takes
    // its share of the new targets, and the shares still cover the config once.
    std::fs::write(
        &path,
        format!("[server]\nshard = \"0/1\"\n{}", config(&sims, 18)),
    )
    .unwrap();
    let mut after = Vec::new();
    for (i, replica) in replicas.iter().enumerate() {
        // Answered once the new file runs.
        let reload = reqwest::Client::new()
            .post(replica.at("/-/reload"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            reload.status(),
            200,
            "replica {i}: {}",
            reload.text().await.unwrap()
        );
        let share = sd_names(replica).await;
        assert!(
            share.is_superset(&shares[i]),
            "replica {i} lost targets on reload: {share:?}"
        );
        after.push(share);
    }
    assert_partition(&after, 18);
    for (i, replica) in replicas.into_iter().enumerate() {
        let (clean, _, stderr) = replica.terminate();
        assert!(clean, "replica {i} did not exit cleanly:\n{stderr}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_shards_are_refused_naming_the_flag() {
    for bad in ["3/3", "0/0", "a/b", "1"] {
        let out = Command::new(BIN)
            .args(["--demo", &format!("--shard={bad}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--shard={bad} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("invalid value '{bad}' for '--shard <I/N>'")),
            "{bad}: {err}"
        );
    }
    let dir = temp_dir("shard-bad-key");
    let path = dir.join("fleet.toml");
    std::fs::write(&path, "[server]\nshard = \"3/3\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config.file")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.shard: 3/3: I must be below N"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}
