"""End-to-end checks of the dashboards against a live Prometheus that scrapes two exporter
replicas with both job shapes (`fleet` on /metrics, `fleet-probe` on /probe through /sd).

Usage: check_queries.py PROMETHEUS_URL

For every dashboard, the variables are resolved as Grafana resolves them (their label_values
queries against this Prometheus; "All" is the regex of every value), and every panel query runs
under each setting: job=All, each job alone, and, with job=All, each exporter replica alone.
Fails when a query errors (e.g. "found duplicate series for the match group" or many-to-many
matching), returns no data, or, for a query without a filter (a comparison), returns a
different number of series under job=All or one replica than under one job: a panel that
counts a device once per job or per replica shows up here. Also fails when a dashboard or rule
names a metric that docs/metrics.md does not list. Prints what ran, per dashboard and setting.
"""
import glob, json, re, sys, time, urllib.error, urllib.parse, urllib.request

prom = sys.argv[1]
METRIC = re.compile(r"\b((?:fleet|ikuai|komari|openvox|iot)_[a-z0-9_]+)\b")
documented = set(re.findall(r"^\| `([a-z0-9_]+)`", open("docs/metrics.md").read(), re.M))


def get(path, **params):
    url = f"{prom}{path}?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def label_values(query, values):
    """Grafana's label_values(selector, label), with `values` substituted into the selector."""
    m = re.fullmatch(r"label_values\((.*), (\w+)\)", query)
    selector, label = substitute(m.group(1), values), m.group(2)
    body = get("/api/v1/series", **{"match[]": selector})
    return sorted({s[label] for s in body["data"] if label in s})


def substitute(expr, values):
    expr = expr.replace("$__rate_interval", "10s")
    for name, value in values.items():
        expr = expr.replace(f"${name}", value)
    return expr


def regex(vals):
    return "(" + "|".join(vals) + ")" if vals else "no-value"


def exprs(panels):
    for p in panels:
        yield from exprs(p.get("panels", []))
        for t in p.get("targets", []):
            if t.get("expr"):
                yield p["title"], t["expr"]


def filtered(expr):
    """A comparison outside label matchers filters series, so counts may differ in time."""
    return re.search(r"(==|!=|>|<)", re.sub(r"\{[^}]*\}", "", expr)) is not None


def settings(board):
    """[(name, {variable: regex})] under which to run the board's queries."""
    tvars = {v["name"]: v for v in board["templating"]["list"]}
    def resolve(job, instance):
        values = {"job": job, "instance": instance}
        if "target" in tvars:
            values["target"] = regex(label_values(tvars["target"]["definition"], values))
        return values
    jobs = label_values(tvars["job"]["definition"], {})
    instances = label_values(tvars["instance"]["definition"], {"job": regex(jobs)})
    out = [("job=All", resolve(regex(jobs), regex(instances)))]
    for job in jobs:
        inst = regex(label_values(tvars["instance"]["definition"], {"job": job}))
        out.append((f"job={job}", resolve(job, inst)))
    for inst in instances:
        out.append((f"job=All instance={inst}", resolve(regex(jobs), inst)))
    return out


failures, names, report, total = [], set(), [], 0
for path in sorted(glob.glob("dashboards/*.json")):
    board = json.load(open(path))
    sets = settings(board)
    if len(sets) < 5:
        failures.append(f"{path}: expected 2 jobs and 2 replicas to check, got {[s for s, _ in sets]}")
    panels = list(exprs(board["panels"]))
    for title, expr in panels:
        names.update(METRIC.findall(expr))
        for _ in range(40):  # rates need a few scrapes; all settings at one instant
            at = time.time()
            results = {}
            for sname, values in sets:
                q = substitute(expr, values)
                body = get("/api/v1/query", query=q, time=at)
                total += 1
                if body["status"] != "success":
                    results[sname] = f"error: {body.get('error')}"
                else:
                    results[sname] = len(body["data"]["result"])
            errors = {s: r for s, r in results.items() if isinstance(r, str)}
            empty = [s for s, r in results.items() if r == 0]
            # a panel about the replicas themselves (by instance, or by instance and more)
            # shows fewer under one replica
            per_replica = re.match(r"\w+ by \(instance[,)]", expr) is not None
            counts = {r for s, r in results.items()
                      if isinstance(r, int) and not (per_replica and "instance=" in s)}
            if not errors and not empty and (filtered(expr) or len(counts) == 1):
                break
            time.sleep(0.5)
        for s, e in errors.items():
            failures.append(f"{path}: panel {title!r} under {s}: {e}\n  {expr}")
        for s in empty:
            failures.append(f"{path}: panel {title!r} under {s}: no data\n  {expr}")
        if not errors and not empty and not filtered(expr) and len(counts) > 1:
            failures.append(f"{path}: panel {title!r}: series counts differ by job/replica "
                            f"selection (a device counted per job or replica): {results}\n  {expr}")
    report.append(f"{path}: {len(panels)} panel queries x {len(sets)} settings "
                  f"({', '.join(s for s, _ in sets)})")

rules = open("config/prometheus/alerts.yml").read()
names.update(METRIC.findall(rules))
undocumented = sorted(n for n in names if n not in documented)
if undocumented:
    failures.append(f"metrics named in dashboards or rules but not in docs/metrics.md: {undocumented}")
for f in failures:
    print(f, file=sys.stderr)
if failures:
    sys.exit(1)
print("\n".join(report))
print(f"dashboards: {total} queries ran without error, each returned data and counted every "
      f"device once; {len(names)} metric names all documented")
