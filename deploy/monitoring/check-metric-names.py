#!/usr/bin/env python3
"""Fails when the Grafana dashboards or the alerting rules use a metric name that docs/metrics.md
does not list, so that neither can select a series no node exports (ctest label monitoring).

    check-metric-names.py [--doc docs/metrics.md] [FILE...]   FILEs: dashboards (*.json) and rule
                                                             files (*.yml); default: the repo's
    check-metric-names.py --self-test                        proves the check catches a name
                                                             missing from the doc, in both kinds

Documented names are the back-quoted first cells of the doc's tables; a histogram's or summary's
name also covers its _bucket, _sum and _count series. Names are taken from PromQL by removing
string literals, Grafana variables ($x, ${x}), label lists (by/without/on/ignoring/group_*),
label matchers {...} and ranges [...], then every identifier that is not a function call, a
keyword or a number. Grafana's label_values(METRIC, LABEL) contributes METRIC only.
"""
import json
import pathlib
import re
import sys
import tempfile

import yaml  # Debian's python3-yaml (scripts/install-deps.sh)

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_DOC = REPO / "docs" / "metrics.md"
DEFAULT_FILES = sorted((REPO / "deploy" / "monitoring" / "grafana").glob("*.json")) + sorted(
    p for p in (REPO / "deploy" / "monitoring" / "prometheus").glob("*.yml") if not p.name.endswith(".test.yml"))

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "atan2", "inf", "nan", "Inf", "NaN"}
IDENT = re.compile(r"(?<![\w.$:])[a-zA-Z_:][a-zA-Z0-9_:]*")


def documented(doc_text):
    names = set()
    for line in doc_text.splitlines():
        m = re.match(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(\w+)", line)
        if not m:
            continue
        name, kind = m.groups()
        names.add(name)
        if kind in ("histogram", "summary"):
            names.update(name + s for s in ("_bucket", "_sum", "_count"))
    return names


def metric_names(expr):
    e = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)  # strings
    e = re.sub(r"label_values\((.*),\s*[a-zA-Z_]\w*\s*\)", r"(\1)", e)  # Grafana: keep the metric
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "", e)  # Grafana variables
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", e)
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # ranges, subqueries
    names = set()
    for m in IDENT.finditer(e):
        rest = e[m.end():].lstrip()
        if m.group() in KEYWORDS or rest.startswith("(") or re.match(r"(by|without)\b", rest):
            continue  # a keyword, a function or an aggregation (`sum by (x) (...)`)
        names.add(m.group())
    return names


def expressions(path):
    """(where, PromQL) of every query in a dashboard or every expr in a rules file."""
    if path.suffix == ".json":
        dash = json.loads(path.read_text())
        out = []
        panels = [p for top in dash.get("panels", []) for p in [top, *top.get("panels", [])]]
        for p in panels:
            for t in p.get("targets", []):
                out.append((f"{path.name}: panel {p.get('title')!r} {t.get('refId')}", t.get("expr", "")))
        for v in dash.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                q = v.get("query")
                out.append((f"{path.name}: variable {v['name']}", q.get("query", "") if isinstance(q, dict) else q))
        return out
    rules = yaml.safe_load(path.read_text())
    return [(f"{path.name}: {r.get('alert') or r.get('record')}", r["expr"])
            for g in rules["groups"] for r in g["rules"]]


def check(doc_path, files):
    """Returns ({name: [where, ...]} of undocumented names, number of names checked)."""
    known = documented(pathlib.Path(doc_path).read_text())
    missing, used = {}, set()
    for f in files:
        for where, expr in expressions(pathlib.Path(f)):
            names = metric_names(expr)
            if not names:
                missing.setdefault("(no metric name at all)", []).append(where)
            for n in names:
                used.add(n)
                if n not in known:
                    missing.setdefault(n, []).append(where)
    return missing, len(used)


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        rules = tmp / "rules.yml"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{
            "alert": "X", "expr": 'sum by (node_id) (rate(dispotify_not_documented_total{code=~"5.."}[5m]))'
                                  ' * on (job) group_left (x) dispotify_build_info > 0'}]}]}))
        missing, _ = check(DEFAULT_DOC, [rules])
        assert set(missing) == {"dispotify_not_documented_total"}, missing
        # The real dashboard against a doc without the Raft term: that name must be reported.
        doc = tmp / "metrics.md"
        doc.write_text("\n".join(l for l in DEFAULT_DOC.read_text().splitlines()
                                 if not l.startswith("| `dispotify_raft_term`")))
        dash = REPO / "deploy" / "monitoring" / "grafana" / "dispotify-cluster.json"
        missing, _ = check(doc, [dash])
        assert set(missing) == {"dispotify_raft_term"}, missing
        # And the parser's corners: functions, keywords, matchers, variables, label_values.
        assert metric_names('histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="{y}"}[$__rate_interval])))'
                            ' / ignoring(z) b offset 5m > bool 1e3') == {"a_bucket", "b"}
        assert metric_names('label_values(c{cluster_id="$cluster"}, node_id)') == {"c"}
    print("check-metric-names: self-test passed (undocumented names are reported)")
    return 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    doc = DEFAULT_DOC
    if argv[:1] == ["--doc"]:
        doc, argv = argv[1], argv[2:]
    files = argv or DEFAULT_FILES
    missing, used = check(doc, files)
    if missing:
        for name, where in sorted(missing.items()):
            print(f"{name}: not in {doc} (used by {'; '.join(where)})", file=sys.stderr)
        return 1
    print(f"check-metric-names: the {used} metric names of {len(files)} file(s) are all in {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
