#!/usr/bin/env python3
"""docker-compose.yml against what it mounts, since CI cannot pull the Prometheus and Grafana
images to start the stack: every scrape target and SD URL of each Prometheus config in the
mounted folder is a compose service's name and the port it listens on; the rule files exist at
the mounted path; the config named by --config.file is mounted; Grafana's provisioning folder has
its datasources (pointing at the Prometheus service) and dashboards provider, whose path is a
mount holding the dashboards; the home dashboard exists; every mount is read-only and every host
path exists; the published ports are the ones the README tells people to open."""

import glob
import os
import re
import sys
from urllib.parse import urlsplit

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


compose = yaml.safe_load(open("docker-compose.yml"))
services = compose["services"]
for name in ("fleet-exporter", "prometheus", "grafana"):
    check(name in services, f"docker-compose.yml: no {name} service")
if errors:
    sys.exit("\n".join(errors))


def flag(service, name):
    for arg in services[service].get("command") or []:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


# The port each service listens on inside its container.
exporter_listen = flag("fleet-exporter", "web.listen-address") or "0.0.0.0:9877"
listens = {
    "fleet-exporter": int(exporter_listen.rsplit(":", 1)[1]),
    "prometheus": int((flag("prometheus", "web.listen-address") or ":9090").rsplit(":", 1)[1]),
    "grafana": int(services["grafana"].get("environment", {}).get("GF_SERVER_HTTP_PORT", 3000)),
}

# Published ports: host port -> container port, and the container port is the one listened on.
published = {}
for name, svc in services.items():
    for p in svc.get("ports", []):
        parts = str(p).split(":")
        host, container = int(parts[-2]), int(parts[-1])
        check(container == listens.get(name), f"{name}: publishes {p}, but listens on {listens.get(name)}")
        published[name] = host
readme = open("README.md").read()
for name, url in (("grafana", "http://localhost:{}"), ("prometheus", "http://localhost:{}"),
                  ("fleet-exporter", "http://localhost:{}/metrics")):
    check(name in published, f"{name}: no published port")
    if name in published:
        check(url.format(published[name]) in readme,
              f"README.md does not tell people to open {url.format(published[name])} ({name})")


def mounts(service):
    """(host path, container path) of each bind mount, checked read-only and present."""
    out = []
    for v in services[service].get("volumes", []):
        parts = v.split(":")
        host, container = parts[0], parts[1]
        mode = parts[2] if len(parts) > 2 else "rw"
        check("ro" in mode.split(","), f"{service}: mount {v} is not read-only")
        check(os.path.exists(host), f"{service}: mount {v}: {host} does not exist")
        out.append((os.path.normpath(host), os.path.normpath(container)))
    return out


def host_path(service, path):
    """Where a path inside the service's container comes from on the host, or None."""
    best = None
    for host, container in mounts(service):
        if path == container or path.startswith(container + "/"):
            if best is None or len(container) > len(best[1]):
                best = (host, container)
    if best is None:
        return None
    return os.path.join(best[0], os.path.relpath(path, best[1]))


def service_address(where, hostport, default_port=None):
    host, _, port = hostport.partition(":")
    port = int(port) if port else default_port
    check(host in services, f"{where}: {host} is not a compose service")
    if host in services:
        check(port == listens.get(host), f"{where}: {hostport}, but {host} listens on {listens.get(host)}")


# Prometheus: the config it runs, and every config in the mounted folder (the README's
# alternative is one --config.file change away).
config_file = flag("prometheus", "config.file") or "/etc/prometheus/prometheus.yml"
check(host_path("prometheus", config_file) is not None, f"prometheus: {config_file} is not mounted")
prom_dir = os.path.dirname(config_file)
prom_host_dir = host_path("prometheus", prom_dir)
configs = [config_file] + [os.path.join(prom_dir, os.path.basename(f))
                           for f in sorted(glob.glob(os.path.join(prom_host_dir or "/nonexistent", "*.yml")))]
checked = 0
for container_cfg in dict.fromkeys(configs):
    host_cfg = host_path("prometheus", container_cfg)
    if not host_cfg or not os.path.isfile(host_cfg):
        check(False, f"prometheus: {container_cfg} has no file behind it")
        continue
    cfg = yaml.safe_load(open(host_cfg))
    if not isinstance(cfg, dict) or "scrape_configs" not in cfg:
        continue  # rules or rule tests
    checked += 1
    where = os.path.relpath(host_cfg)
    for rule in cfg.get("rule_files", []):
        container_rule = os.path.join(os.path.dirname(container_cfg), rule)
        host_rule = host_path("prometheus", container_rule)
        check(host_rule is not None and glob.glob(host_rule),
              f"{where}: rule file {rule} is not at {container_rule} in the container")
        for f in glob.glob(host_rule or ""):
            check("groups" in (yaml.safe_load(open(f)) or {}), f"{where}: {f} has no rule groups")
    for job in cfg["scrape_configs"]:
        jw = f"{where}: job {job['job_name']}"
        for sc in job.get("static_configs", []):
            for t in sc.get("targets", []):
                service_address(jw, t)
        for sd in job.get("http_sd_configs", []):
            u = urlsplit(sd["url"])
            service_address(jw, u.netloc, 443 if u.scheme == "https" else 80)
            check(u.path == "/sd", f"{jw}: SD URL {sd['url']} is not the exporter's /sd")
        check(job.get("static_configs") or job.get("http_sd_configs"), f"{jw}: no targets")
check(checked >= 2, f"prometheus: expected prometheus.yml and prometheus-probe.yml in {prom_host_dir}")

# Grafana: provisioning, datasources, dashboards.
prov = host_path("grafana", "/etc/grafana/provisioning")
check(prov and os.path.isdir(prov), "grafana: /etc/grafana/provisioning is not mounted")
if prov:
    ds_files = glob.glob(os.path.join(prov, "datasources", "*.yml"))
    check(ds_files, f"grafana: no datasources in {prov}/datasources")
    for f in ds_files:
        for ds in yaml.safe_load(open(f)).get("datasources", []):
            if ds.get("type") == "prometheus":
                service_address(f"{f}: datasource {ds['name']}", urlsplit(ds["url"]).netloc, 80)
    dash_files = glob.glob(os.path.join(prov, "dashboards", "*.yml"))
    check(dash_files, f"grafana: no dashboard providers in {prov}/dashboards")
    for f in dash_files:
        for p in yaml.safe_load(open(f)).get("providers", []):
            path = p["options"]["path"]
            hp = host_path("grafana", path)
            check(hp and glob.glob(os.path.join(hp, "*.json")),
                  f"{f}: provider {p['name']} reads {path}, which holds no dashboards in the container")
            if hp:
                for d in sorted(glob.glob("dashboards/*.json")):
                    check(os.path.exists(os.path.join(hp, os.path.basename(d))),
                          f"{d} is not under {path} in the container")
home = services["grafana"].get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
if home:
    hp = host_path("grafana", home)
    check(hp and os.path.isfile(hp), f"grafana: home dashboard {home} is not mounted")

# The exporter: built from this Dockerfile, in demo mode (no config to mount).
check(services["fleet-exporter"].get("build") in (".", {"context": "."}), "fleet-exporter: not built from .")
check("--demo" in (services["fleet-exporter"].get("command") or []), "fleet-exporter: not --demo")
for name in ("prometheus", "grafana"):
    check(re.search(r":v?\d", services[name].get("image", "")), f"{name}: image tag not pinned")

if errors:
    print("docker-compose.yml does not match what it mounts:", *errors, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"compose: {len(services)} services; {checked} Prometheus configs, their targets, SD URLs and "
      "rule files, Grafana's provisioning and dashboards, ports and read-only mounts agree")
