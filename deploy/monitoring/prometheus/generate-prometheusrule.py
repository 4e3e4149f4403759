#!/usr/bin/env python3
"""Writes dispotify-prometheusrule.yaml (a Prometheus Operator PrometheusRule) from
dispotify-rules.yml, the one source of Dispotify's alerts, so the two cannot drift.

    generate-prometheusrule.py           rewrite the PrometheusRule
    generate-prometheusrule.py --check   exit 1 (with a diff) when the committed file differs from
                                         what this script makes, or when the PrometheusRule's
                                         spec.groups do not parse to the rules file's groups

The rules file's `groups:` block is copied as text under `spec:` (indented two spaces), so the
manifest carries the rules byte for byte; --check also compares the two parsed (PyYAML, Debian's
python3-yaml, installed by scripts/install-deps.sh) to catch an indentation that changes meaning.
"""
import difflib
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "dispotify-rules.yml"
TARGET = HERE / "dispotify-prometheusrule.yaml"

HEADER = """\
# GENERATED from dispotify-rules.yml by generate-prometheusrule.py: edit that file and rerun the
# script (ctest label monitoring fails while the two differ). Runbooks: docs/operations.md.
# The Prometheus Operator loads it when the labels below match the Prometheus object's
# ruleSelector (add the label yours selects on, e.g. `release: <name>`, with kustomize or helm).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: dispotify-alerts
  labels:
    app.kubernetes.io/name: dispotify
    app.kubernetes.io/component: alerts
spec:
"""


def render(source_text: str) -> str:
    lines = source_text.splitlines()
    # Skip the file's own comment header; the rest must be the top-level `groups:` mapping.
    start = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), None)
    if start is None or lines[start] != "groups:":
        raise SystemExit(f"{SOURCE.name}: expected `groups:` as the first key, got {lines[start:start + 1]}")
    for line in lines[start + 1:]:
        if line and not line.startswith((" ", "#")):
            raise SystemExit(f"{SOURCE.name}: only `groups:` may be at the top level, found {line!r}")
    body = "\n".join(("  " + line) if line else "" for line in lines[start:])
    return HEADER + body + "\n"


def main() -> int:
    want = render(SOURCE.read_text())
    if sys.argv[1:] == ["--check"]:
        have = TARGET.read_text() if TARGET.exists() else ""
        if have != want:
            sys.stdout.writelines(difflib.unified_diff(
                have.splitlines(True), want.splitlines(True), str(TARGET), "generated"))
            print(f"{TARGET.name} is stale: run {pathlib.Path(__file__).name}", file=sys.stderr)
            return 1
        import yaml  # only the check needs it

        rule = yaml.safe_load(have)
        rules = yaml.safe_load(SOURCE.read_text())
        if rule.get("kind") != "PrometheusRule" or rule.get("spec", {}).get("groups") != rules["groups"]:
            print(f"{TARGET.name}: spec.groups differ from {SOURCE.name} once parsed", file=sys.stderr)
            return 1
        print(f"{TARGET.name} matches {SOURCE.name} ({len(rules['groups'])} groups)")
        return 0
    if sys.argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    TARGET.write_text(want)
    return 0


if __name__ == "__main__":
    sys.exit(main())
