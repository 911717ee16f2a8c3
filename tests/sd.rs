//! `GET /sd` over a real socket: the Prometheus HTTP SD list of this exporter's targets, that
//! each entry's probe answers, that it follows a reload, and that basic auth guards it.

mod common;

use std::time::Duration;

use fleet_core::config::Source;
use fleet_exporter::web::WebConfig;
use reqwest::header::{CONTENT_TYPE, HOST};
use serde_json::{json, Value};

use common::{ikuai_target, start_exporter, start_exporter_web, start_exporter_with, temp_dir};

/// Two targets nobody answers for: /sd lists configured targets whether or not they poll.
fn config() -> String {
    format!(
        "{}[[targets]]\nname = \"status\"\nkind = \"komari\"\nurl = \"http://127.0.0.1:9\"\n",
        ikuai_target("hq-router", "http://127.0.0.1:9", "pw", "")
    )
}

fn entry(address: &str, name: &str, kind: &str) -> Value {
    json!({
        "targets": [address],
        "labels": {
            "__metrics_path__": "/probe",
            "__param_target": name,
            "target": name,
            "__meta_fleet_exporter_kind": kind,
        }
    })
}

async fn sd(url: &str, host: Option<&str>) -> (u16, String, Value) {
    let mut req = reqwest::Client::new().get(format!("{url}/sd"));
    if let Some(h) = host {
        req = req.header(HOST, h);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ctype = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_string();
    let body = resp.text().await.unwrap();
    (
        status,
        ctype,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn sd_lists_every_target_at_the_address_it_was_asked_on() {
    let exporter = start_exporter(&config()).await;
    let address = exporter.url.strip_prefix("http://").unwrap();
    let (status, ctype, body) = sd(&exporter.url, None).await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/json");
    assert_eq!(
        body,
        json!([
            entry(address, "hq-router", "ikuai"),
            entry(address, "status", "komari")
        ])
    );

    // Prometheus scrapes http://<targets[0]><__metrics_path__>?target=<__param_target>.
    for e in body.as_array().unwrap() {
        let labels = &e["labels"];
        let name = labels["__param_target"].as_str().unwrap();
        let url = format!(
            "http://{}{}?target={name}",
            e["targets"][0].as_str().unwrap(),
            labels["__metrics_path__"].as_str().unwrap()
        );
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let text = resp.text().await.unwrap();
        let wanted = format!("fleet_target_up{{target=\"{name}\",kind=\"{}\"}}", {
            labels["__meta_fleet_exporter_kind"].as_str().unwrap()
        });
        assert!(text.contains(&wanted), "{url} lacks {wanted}:\n{text}");
    }

    // Behind a proxy or a service name, the address is the one the client used.
    let (status, _, body) = sd(&exporter.url, Some("fleet-exporter-0.fleet:9877")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body[1],
        entry("fleet-exporter-0.fleet:9877", "status", "komari")
    );
    let (status, _, _) = sd(&exporter.url, Some("evil/../x")).await;
    assert_eq!(status, 400, "a Host that is not host[:port] is refused");
}

#[tokio::test]
async fn sd_follows_a_reload() {
    let dir = temp_dir("sd-reload");
    let path = dir.join("config.toml");
    let one = ikuai_target("a", "http://127.0.0.1:9", "pw", "");
    std::fs::write(&path, &one).unwrap();
    let exporter = start_exporter_with(&one, Source::File(path.clone())).await;
    let address = exporter.url.strip_prefix("http://").unwrap().to_string();
    assert_eq!(
        sd(&exporter.url, None).await.2,
        json!([entry(&address, "a", "ikuai")])
    );

    std::fs::write(&path, config()).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/-/reload", exporter.url))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sd(&exporter.url, None).await.2,
        json!([
            entry(&address, "hq-router", "ikuai"),
            entry(&address, "status", "komari")
        ]),
        "a added and a removed target show in the next discovery"
    );
}

#[tokio::test]
async fn sd_is_behind_basic_auth_like_every_path() {
    let dir = temp_dir("sd-auth");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let path = dir.join("web.yml");
    std::fs::write(&path, format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
    let web = WebConfig::load(&path).unwrap();
    let exporter = start_exporter_web(&config(), Source::Builtin, web).await;
    let http = reqwest::Client::new();
    let url = format!("{}/sd", exporter.url);

    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Basic");
    let resp = http
        .get(&url)
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .get(&url)
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body.as_array().unwrap().len(), 2);
}
