"""End-to-end checks of dashboards and alert rules against a live Prometheus.

Usage: check_queries.py PROMETHEUS_URL

Fails unless every PromQL expression in every dashboard panel (template variables substituted)
returns at least one series, and every metric a dashboard or rule names is in docs/metrics.md.
"""
import glob, json, re, sys, time, urllib.parse, urllib.request

prom = sys.argv[1]
METRIC = re.compile(r"\b((?:fleet|ikuai|komari|openvox|iot)_[a-z0-9_]+)\b")
documented = set(re.findall(r"^\| `([a-z0-9_]+)`", open("docs/metrics.md").read(), re.M))

def exprs(panels):
    for p in panels:
        yield from exprs(p.get("panels", []))
        for t in p.get("targets", []):
            if t.get("expr"):
                yield p["title"], t["expr"]

def substitute(expr):
    return (expr.replace("$__rate_interval", "15s").replace("$job", "fleet")
            .replace("$target", ".*"))

def series(expr):
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body["status"] != "success":
        raise SystemExit(f"query failed: {expr}: {body}")
    return len(body["data"]["result"])

failures, panels, names = [], 0, set()
for path in sorted(glob.glob("dashboards/*.json")):
    board = json.load(open(path))
    for title, expr in exprs(board["panels"]):
        panels += 1
        names.update(METRIC.findall(expr))
        q = substitute(expr)
        for _ in range(40):  # rates need a few scrapes
            n = series(q)
            if n:
                break
            time.sleep(0.5)
        if not n:
            failures.append(f"{path}: panel {title!r}: no data for {q}")

rules = open("config/prometheus/alerts.yml").read()
rule_names = set(METRIC.findall(rules))
names.update(rule_names)
undocumented = sorted(n for n in names if n not in documented)
if undocumented:
    failures.append(f"metrics named in dashboards or rules but not in docs/metrics.md: {undocumented}")
rule_count = len(re.findall(r"^\s*- alert:", rules, re.M))
for f in failures:
    print(f, file=sys.stderr)
if failures:
    sys.exit(1)
print(f"dashboards: {panels} panel queries returned data; {rule_count} alert rules; "
      f"{len(names)} metric names all documented")
