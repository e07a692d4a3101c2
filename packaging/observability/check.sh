#!/usr/bin/env bash
# packaging/observability/check.sh — check the operator bundle in this folder:
#   1. promtool check rules atrium-alerts.yaml        (the rules load)
#   2. promtool test rules atrium-alerts.test.yaml    (each alert fires when
#      it should, with its labels and annotations, and stays quiet otherwise)
#   3. every query of atrium-dashboard.json parses (promtool checks them as
#      recording rules, with Grafana's variables filled in)
#   4. every atrium_* and process_* metric the rules and the dashboard use
#      is listed in README.md's metric table, and every alert has a
#      runbook.md section its `runbook` annotation points to.
# Needs promtool (Debian package prometheus) and python3; exits 77 (skipped)
# without promtool. The ctest observability_bundle runs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v promtool >/dev/null 2>&1; then
  echo "SKIP: promtool is missing (Debian package prometheus); the alert rules and the dashboard were not checked"
  exit 77
fi
tmp=$(mktemp -d /tmp/atrium-observability-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

promtool check rules "$here/atrium-alerts.yaml"
(cd "$here" && promtool test rules atrium-alerts.test.yaml)

python3 - "$here" "$tmp/dashboard-rules.yaml" <<'PY'
import json, re, sys

here, out = sys.argv[1], sys.argv[2]
dash = json.load(open(f"{here}/atrium-dashboard.json"))
readme = open(f"{here}/README.md").read()
runbook = open(f"{here}/runbook.md").read()
alerts = open(f"{here}/atrium-alerts.yaml").read()

documented = set(re.findall(r"^\| `((?:atrium|process)_[a-z_]+)`", readme, re.M))
if not documented:
    sys.exit("README.md has no metric table")

def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))

exprs, ids, problems = [], set(), []
for p in panels(dash["panels"]):
    if p["id"] in ids:
        problems.append(f"panel id {p['id']} is used twice")
    ids.add(p["id"])
    for t in p.get("targets", []):
        exprs.append((p["title"], t["expr"]))
for v in dash["templating"]["list"]:
    q = v.get("query")
    if isinstance(q, dict):
        m = re.fullmatch(r"label_values\((.*), *\w+\)", q["query"])
        if m:
            exprs.append((f"variable {v['name']}", m.group(1)))

fill = {"$__rate_interval": "5m", "$__interval": "1m", "$job": "atrium",
        "$instance": ".*"}
with open(out, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        for k, v in fill.items():
            e = e.replace(k, v)
        if "$" in e:
            problems.append(f"{title}: unknown variable in {e}")
        f.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n")

def metrics(text):
    names = set(re.findall(r"\b((?:atrium|process)_[a-z_]+)", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if re.sub(r"_(bucket|sum|count)$", "", n) in documented else n
            for n in names}

used = metrics(" ".join(e for _, e in exprs)) | metrics(alerts)
for n in sorted(used - documented):
    problems.append(f"{n} is used but not in README.md's metric table")

anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
           for h in re.findall(r"^## (.+)$", runbook, re.M)}
for name, link in re.findall(r"- alert: (\w+)(?:.|\n)*?runbook: \"packaging/observability/runbook.md#([\w-]+)\"", alerts):
    if link != name.lower():
        problems.append(f"{name}: runbook link #{link} should be #{name.lower()}")
    if link not in anchors:
        problems.append(f"{name}: runbook.md has no section #{link}")
if len(re.findall(r"- alert: ", alerts)) != len(re.findall(r"runbook: ", alerts)):
    problems.append("an alert has no runbook annotation")

for p in problems:
    print("FAIL:", p)
print(f"dashboard: {len(exprs)} queries, {len(used)} metrics, all documented" if not problems else "")
sys.exit(1 if problems else 0)
PY
promtool check rules "$tmp/dashboard-rules.yaml"
echo "observability bundle: OK"
