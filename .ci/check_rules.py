"""Static checks of the alert rules: alerts.yml is what config/prometheus/alerts.py generates;
every rule has a `for:`, a `severity` and a `runbook_url` whose section exists in
docs/runbook.md; and alerts.test.yml makes every rule fire at least once and checks at least
once that it does not (before its `for:`, or on a partial condition)."""
import re, subprocess, sys

import yaml

subprocess.run([sys.executable, "config/prometheus/alerts.py", "--check"], check=True)
rules = [r for g in yaml.safe_load(open("config/prometheus/alerts.yml"))["groups"] for r in g["rules"]]
tests = yaml.safe_load(open("config/prometheus/alerts.test.yml"))["tests"]
runbook = open("docs/runbook.md").read()
anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
           for h in re.findall(r"^#+ (.*)$", runbook, re.M)}
fires, quiet = set(), set()
for t in tests:
    for a in t.get("alert_rule_test", []):
        (fires if a.get("exp_alerts") else quiet).add(a["alertname"])
failures = []
for r in rules:
    name = r["alert"]
    if not r.get("for"):
        failures.append(f"{name}: no for:")
    if r["labels"].get("severity") not in ("critical", "warning", "info"):
        failures.append(f"{name}: severity {r['labels'].get('severity')!r}")
    url = r["annotations"].get("runbook_url", "")
    if url.rpartition("#")[2] not in anchors:
        failures.append(f"{name}: runbook_url {url!r} names no section of docs/runbook.md")
    if name not in fires:
        failures.append(f"{name}: alerts.test.yml never makes it fire")
    if name not in quiet:
        failures.append(f"{name}: alerts.test.yml never checks that it stays quiet")
for f in failures:
    print(f, file=sys.stderr)
if failures:
    sys.exit(1)
print(f"rules: {len(rules)} rules, each with for:, severity, a runbook section, and tests that "
      "it fires and that it stays quiet")
