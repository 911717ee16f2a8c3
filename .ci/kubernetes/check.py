"""What the schemas cannot see in deploy/kubernetes/: that the files agree with each other and
with the exporter, and that the Prometheus parts load in Prometheus' own tools.

    python3 .ci/kubernetes/check.py SCRATCH_DIR FLEET_EXPORTER_BINARY

Run by .ci/check_kubernetes, with the Python of its venv (PyYAML) and promtool; exits non-zero naming the file
and what is wrong.
"""
import copy
import pathlib
import re
import subprocess
import sys

import yaml

DEPLOY = pathlib.Path("deploy/kubernetes")
work, binary = pathlib.Path(sys.argv[1]), sys.argv[2]
problems = []


def check(ok, what):
    if not ok:
        problems.append(what)


def load(path):
    return yaml.safe_load(path.read_text())


# Each kustomization lists exactly the manifests beside it (the Secret example excepted: no
# placeholder password is applied), so nothing is shipped that `kubectl apply -k` leaves out.
for folder in [DEPLOY, DEPLOY / "prometheus-operator"]:
    listed = sorted(load(folder / "kustomization.yaml")["resources"])
    present = sorted(p.name for p in folder.glob("*.yaml")
                     if p.name not in ("kustomization.yaml", "secret.example.yaml"))
    check(listed == present, f"{folder}/kustomization.yaml lists {listed}, the folder has {present}")

sts = load(DEPLOY / "statefulset.yaml")
service = load(DEPLOY / "service.yaml")
configmap = load(DEPLOY / "configmap.yaml")
secret = load(DEPLOY / "secret.example.yaml")
podmonitor = load(DEPLOY / "prometheus-operator/podmonitor.yaml")
pod = sts["spec"]["template"]["spec"]
(container,) = pod["containers"]
where = "statefulset.yaml"

# The shard: I from the pod name, N equal to the replica count.
shard = [a for a in container["args"] if a.startswith("--shard=")]
check(len(shard) == 1, f"{where}: one --shard argument, got {shard}")
if shard:
    m = re.fullmatch(r"--shard=\$\(POD_NAME\)/(\d+)", shard[0])
    check(m is not None, f"{where}: --shard must be $(POD_NAME)/N, got {shard[0]}")
    if m:
        check(int(m.group(1)) == sts["spec"]["replicas"],
              f"{where}: --shard's N is {m.group(1)}, replicas is {sts['spec']['replicas']}")
env = {e["name"]: e for e in container.get("env", [])}
check(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
      f"{where}: POD_NAME must come from the downward API's metadata.name")
check(sts["spec"]["serviceName"] == service["metadata"]["name"],
      f"{where}: serviceName is not the headless Service's name")
check(service["spec"].get("clusterIP") == "None", "service.yaml: the Service must be headless")

# Labels, ports and probes line up.
labels = sts["spec"]["template"]["metadata"]["labels"]
for name, selector in [("statefulset.yaml", sts["spec"]["selector"]["matchLabels"]),
                       ("service.yaml", service["spec"]["selector"]),
                       ("podmonitor.yaml", podmonitor["spec"]["selector"]["matchLabels"])]:
    check(selector.items() <= labels.items(), f"{name}: selector {selector} misses the pods {labels}")
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
check(ports.get("http") == 9877, f"{where}: the container port named http must be 9877, got {ports}")
check(service["spec"]["ports"][0]["targetPort"] in ports, "service.yaml: targetPort is no container port")
check(all(e["port"] in ports for e in podmonitor["spec"]["podMetricsEndpoints"]),
      "podmonitor.yaml: a port that is no container port")
check(container["livenessProbe"]["httpGet"]["path"] == "/-/healthy", f"{where}: liveness is not /-/healthy")
check(container["readinessProbe"]["httpGet"]["path"] == "/-/ready", f"{where}: readiness is not /-/ready")
jobs = [r for e in podmonitor["spec"]["podMetricsEndpoints"] for r in e.get("relabelings", [])
        if r.get("targetLabel") == "job"]
check([r.get("replacement") for r in jobs] == ["fleet"],
      "podmonitor.yaml: the job must be relabeled to `fleet`, the alerts' and dashboards' job")

# Hardening: non-root, read-only root filesystem, nothing to escalate with, resources set.
security = container["securityContext"]
check(pod["securityContext"].get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
check(security.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
check(security.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation")
check(security.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities.drop ALL")
check({"cpu", "memory"} <= container["resources"].get("requests", {}).keys(), f"{where}: requests")
check("memory" in container["resources"].get("limits", {}), f"{where}: memory limit")

# The image is the version Cargo.toml has.
cargo_version = re.search(r'^version = "([^"]+)"', pathlib.Path("Cargo.toml").read_text(), re.M).group(1)
check(container["image"].endswith(f":{cargo_version}"),
      f"{where}: image {container['image']} is not tagged {cargo_version} (Cargo.toml)")

# The mounted folder, laid out as the kubelet would: the config with the Secret's files where
# the projected volume puts them. The config's `*_file` paths are exactly those files, and the
# exporter accepts the result.
(mount,) = container["volumeMounts"]
(volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
config_dir = work / "etc-fleet-exporter"
items = {}
for source in volume["projected"]["sources"]:
    if "configMap" in source:
        check(source["configMap"]["name"] == configmap["metadata"]["name"], f"{where}: ConfigMap name")
        data = configmap["data"]
    else:
        check(source["secret"]["name"] == secret["metadata"]["name"], f"{where}: Secret name")
        data = secret["stringData"]
        check(sorted(i["key"] for i in source["secret"]["items"]) == sorted(data),
              f"{where}: the Secret's items are not the example Secret's keys {sorted(data)}")
    for item in source[next(iter(source))]["items"]:
        items[item["path"]] = data[item["key"]]
# As the kubelet writes a projected volume: the files in a timestamped folder, `..data` a link
# to it, and each top-level entry a link through `..data`.
data_dir = config_dir / "..2026_01_01_00_00_00.000000000"
for path, text in items.items():
    (data_dir / path).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / path).write_text(text)
(config_dir / "..data").symlink_to(data_dir.name)
for entry in {pathlib.Path(p).parts[0] for p in items}:
    (config_dir / entry).symlink_to(f"..data/{entry}")
config_arg = [a for a in container["args"] if a.startswith("--config.file=")]
check(config_arg == [f"--config.file={mount['mountPath']}/fleet-exporter.toml"],
      f"{where}: --config.file is not the mounted config")
toml = items.get("fleet-exporter.toml", "")
named = sorted(re.findall(r'^\w+_file = "([^"]+)"$', toml, re.M))
check(named == sorted(p for p in items if p != "fleet-exporter.toml"),
      f"configmap.yaml: the config's *_file paths {named} are not the mounted secret files")
result = subprocess.run([binary, "--config.check", f"--config.file={config_dir}/fleet-exporter.toml"],
                        capture_output=True, text=True)
check(result.returncode == 0, f"configmap.yaml: fleet-exporter --config.check: {result.stderr.strip()}")
print(f"config: {result.stdout.strip()}")

# The PrometheusRule is alerts.py's output, and its rules load in promtool.
subprocess.run([sys.executable, "config/prometheus/alerts.py", "--check"], check=True)
rule = load(DEPLOY / "prometheus-operator/prometheusrule.yaml")
check(rule["spec"]["groups"] == load(pathlib.Path("config/prometheus/alerts.yml"))["groups"],
      "prometheusrule.yaml: the groups differ from config/prometheus/alerts.yml")
rules_file = work / "prometheusrule-groups.yml"
rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
subprocess.run(["promtool", "check", "rules", str(rules_file)], check=True, stdout=subprocess.DEVNULL)
print(f"prometheusrule.yaml: {sum(len(g['rules']) for g in rule['spec']['groups'])} rules pass promtool")

# The plain-Prometheus configs pass promtool. Debian's promtool is built without Kubernetes
# discovery, so each kubernetes_sd_configs is checked here against the keys Prometheus
# documents for it and replaced by a static_configs for promtool to check the rest.
SD_KEYS = {"role", "namespaces", "selectors", "api_server", "attach_metadata", "kubeconfig_file"}
for config_path in sorted((DEPLOY / "prometheus").glob("*.yml")):
    config = load(config_path)
    for job in config["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            check(set(sd) <= SD_KEYS and sd["role"] == "pod"
                  and all(set(s) <= {"role", "label", "field"} for s in sd.get("selectors", []))
                  and set(sd.get("namespaces", {})) <= {"names", "own_namespace"},
                  f"{config_path}: job {job['job_name']}: kubernetes_sd_configs {sd}")
            job.setdefault("static_configs", []).append({"targets": ["fleet-exporter-0:9877"]})
    config["rule_files"] = [str(pathlib.Path("config/prometheus/alerts.yml").resolve())]
    checked = work / config_path.name
    checked.write_text(yaml.safe_dump(copy.deepcopy(config)))
    result = subprocess.run(["promtool", "check", "config", str(checked)], capture_output=True, text=True)
    check(result.returncode == 0, f"{config_path}: promtool check config: {result.stdout}{result.stderr}")
    jobs = sorted(j["job_name"] for j in config["scrape_configs"])
    print(f"{config_path}: promtool check config passes (jobs {jobs})")

# In the probe file, both jobs name a replica by the same `instance`: the probe job's is the
# host of its /sd URL (/sd answers with the address it was asked on), the `fleet` job's comes
# from relabeling the pod's name and namespace. The alerts and dashboards join the two jobs on
# `instance`; a pod IP there would leave the exporter's memory and HTTP series unmatched.
probe = load(DEPLOY / "prometheus/prometheus-probe.yml")
(probe_job,) = [j for j in probe["scrape_configs"] if j["job_name"] == "fleet-probe"]
sd_hosts = [re.fullmatch(r"https?://([^/]+)/sd", c["url"]).group(1) for c in probe_job["http_sd_configs"]]
(fleet_job,) = [j for j in probe["scrape_configs"] if j["job_name"] == "fleet"]
for ordinal, host in enumerate(sd_hosts):
    (namespace,) = fleet_job["kubernetes_sd_configs"][0]["namespaces"]["names"]
    meta = {"__meta_kubernetes_pod_name": f"{sts['metadata']['name']}-{ordinal}",
            "__meta_kubernetes_namespace": namespace}
    instance = None
    for r in fleet_job.get("relabel_configs", []):
        if r.get("target_label") == "instance":
            value = r.get("separator", ";").join(meta.get(l, "") for l in r["source_labels"])
            m = re.fullmatch(r.get("regex", "(.*)"), value)
            instance = m.expand(r["replacement"].replace("$", "\\")) if m else None
    check(instance == host, f"prometheus/prometheus-probe.yml: the fleet job names pod {ordinal} "
                            f"instance={instance or 'the pod IP'}, the probe job {host}")

if problems:
    sys.exit("deploy/kubernetes:\n  " + "\n  ".join(problems))
print("deploy/kubernetes: the manifests agree with each other and with the exporter")
