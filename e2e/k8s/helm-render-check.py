#!/usr/bin/env python3
"""Checks what `helm template` rendered from helm/dispotify-operator (e2e/k8s/helm-check.sh).

  helm-render-check.py default RENDERED MANIFEST_DIR
      The chart with its default values (release dispotify-operator in dispotify-system) renders
      exactly the objects of deploy/kubernetes/operator/ (all but the Namespace, which Helm does
      not own): the same kinds and names, the same fields, the same RBAC rules (as sets). Helm's
      labels (instance, version, managed-by, helm.sh/chart) may come on top of the manifests'.

  helm-render-check.py values RENDERED MANIFEST_DIR VALUES RELEASE RELEASE_NAMESPACE
      The chart with VALUES (a values file that sets watchNamespace, cluster.enabled, ...): the RBAC
      is namespaced (a Role in watchNamespace with every rule of rbac.yaml's ClusterRole but the
      cluster-scoped one, which stays in a ClusterRole), the Lease Role is rbac.yaml's, the
      Deployment's args, image and ServiceAccount follow the values, and the DispotifyCluster and
      ServiceMonitor carry them.

Prints one line per check ("ok" / "FAIL") and exits 1 when any failed.
"""
import copy
import os
import sys

import yaml

failures = 0


def ok(msg):
    print(f"ok    {msg}")


def fail(msg):
    global failures
    failures += 1
    print(f"FAIL  {msg}")


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(f"{msg}{': ' + detail if detail else ''}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def index(objects):
    out = {}
    for o in objects:
        key = (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", ""))
        if key in out:
            fail(f"{key} rendered twice")
        out[key] = o
    return out


def rule_key(rule):
    return tuple(
        (field, tuple(sorted(rule.get(field, []))))
        for field in ("apiGroups", "resources", "resourceNames", "verbs", "nonResourceURLs")
    )


def rules_of(obj):
    return sorted(rule_key(r) for r in obj.get("rules", []))


def show(rules):
    return "; ".join(
        " ".join(f"{k}={list(v)}" for k, v in r if v) for r in rules
    )


HELM_LABELS = {"app.kubernetes.io/instance", "app.kubernetes.io/version",
               "app.kubernetes.io/managed-by", "helm.sh/chart"}
# Where label maps live: they are compared as "the manifest's labels, plus Helm's".
LABEL_PATHS = [("metadata", "labels"), ("spec", "selector", "matchLabels"),
               ("spec", "template", "metadata", "labels"), ("spec", "selector")]


def pop_path(obj, path):
    cur = obj
    for p in path[:-1]:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    if not isinstance(cur, dict):
        return None
    return cur.pop(path[-1], None)


def compare_default(rendered_path, manifest_dir):
    rendered = index(load_all(rendered_path))
    want = {}
    for name in sorted(os.listdir(manifest_dir)):
        if name.endswith(".yaml"):
            for o in load_all(os.path.join(manifest_dir, name)):
                if o["kind"] != "Namespace":
                    want.update(index([o]))
    check(sorted(rendered) == sorted(want), "default values: the objects of deploy/kubernetes/operator/",
          f"rendered {sorted(rendered)}, manifests {sorted(want)}")
    for key in sorted(set(want) & set(rendered)):
        m, r = copy.deepcopy(want[key]), copy.deepcopy(rendered[key])
        label = f"{key[0]}/{key[1]}"
        for path in LABEL_PATHS:
            if key[0] != "Service" and path == ("spec", "selector"):
                continue
            lm, lr = pop_path(m, path), pop_path(r, path)
            if lm is None and lr is None:
                continue
            lm, lr = lm or {}, lr or {}
            missing = {k: v for k, v in lm.items() if lr.get(k) != v}
            extra = set(lr) - set(lm) - HELM_LABELS
            check(not missing and not extra, f"{label} {'.'.join(path)}",
                  f"missing or different {missing}, unexpected {sorted(extra)}")
        if "rules" in m or "rules" in r:
            rm, rr = rules_of(m), rules_of(r)
            check(rm == rr, f"{label} rules = rbac.yaml's",
                  f"only in rbac.yaml: {show(sorted(set(rm) - set(rr)))}; "
                  f"only in the chart: {show(sorted(set(rr) - set(rm)))}")
            m.pop("rules", None)
            r.pop("rules", None)
        check(m == r, f"{label} equals deploy/kubernetes/operator's",
              f"\n  manifest: {m}\n  rendered: {r}")


CLUSTER_SCOPED = {("apiextensions.k8s.io", "customresourcedefinitions")}


def compare_values(rendered_path, manifest_dir, values_path, release, release_ns):
    rendered = index(load_all(rendered_path))
    with open(values_path) as f:
        values = yaml.safe_load(f)
    rbac = index(load_all(os.path.join(manifest_dir, "rbac.yaml")))
    cluster_role = next(o for (k, _, _), o in rbac.items() if k == "ClusterRole")
    lease_role = next(o for (k, _, _), o in rbac.items() if k == "Role")
    full = rules_of(cluster_role)
    chart = "dispotify-operator"
    fullname = values.get("fullnameOverride") or (release if chart in release else f"{release}-{chart}")
    sa = values["serviceAccount"].get("name") or fullname
    watch = values.get("watchNamespace", "")

    def get(kind, name, ns=""):
        o = rendered.get((kind, name, ns))
        if o is None:
            fail(f"no {kind} {ns + '/' if ns else ''}{name} rendered")
        return o or {}

    if watch:
        role = get("Role", fullname, watch)
        crole = get("ClusterRole", fullname)
        scoped = [r for r in full if (r[0][1][0], r[1][1][0]) not in CLUSTER_SCOPED]
        cluster_wide = [r for r in full if (r[0][1][0], r[1][1][0]) in CLUSTER_SCOPED]
        check(rules_of(role) == sorted(scoped), f"Role {watch}/{fullname}: rbac.yaml's namespaced rules",
              f"\n  want {show(sorted(scoped))}\n  got  {show(rules_of(role))}")
        check(rules_of(crole) == sorted(cluster_wide), f"ClusterRole {fullname}: only the cluster-scoped rule",
              show(rules_of(crole)))
        rb = get("RoleBinding", fullname, watch)
        check(rb.get("roleRef", {}).get("kind") == "Role" and
              rb.get("subjects") == [{"kind": "ServiceAccount", "name": sa, "namespace": release_ns}],
              f"RoleBinding {watch}/{fullname} binds the Role to {release_ns}/{sa}", str(rb))
    else:
        check(rules_of(get("ClusterRole", fullname)) == full, f"ClusterRole {fullname} = rbac.yaml's")
    crb = get("ClusterRoleBinding", fullname)
    check(crb.get("subjects") == [{"kind": "ServiceAccount", "name": sa, "namespace": release_ns}],
          f"ClusterRoleBinding {fullname} subject {release_ns}/{sa}", str(crb.get("subjects")))
    lease = get("Role", f"{fullname}-leader-election", release_ns)
    check(rules_of(lease) == rules_of(lease_role), "the Lease Role = rbac.yaml's")
    if values["serviceAccount"].get("create", True):
        get("ServiceAccount", sa, release_ns)

    dep = get("Deployment", fullname, release_ns)
    pod = dep.get("spec", {}).get("template", {}).get("spec", {})
    check(dep.get("spec", {}).get("replicas") == values["replicaCount"], "Deployment replicas")
    check(pod.get("serviceAccountName") == sa, "Deployment serviceAccountName", str(pod.get("serviceAccountName")))
    c = pod.get("containers", [{}])[0]
    img = values["image"]
    check(c.get("image") == f"{img['repository']}:{img['tag']}" and c.get("imagePullPolicy") == img["pullPolicy"],
          "image and pull policy", f"{c.get('image')} {c.get('imagePullPolicy')}")
    op = values.get("operator", {})
    want_args = {"--leader-elect=true"}
    if watch:
        want_args.add(f"--namespace={watch}")
    for flag, key in (("--default-image", "defaultNodeImage"), ("--cluster-domain", "clusterDomain"),
                      ("--lease-duration-ms", "leaseDurationMs"), ("--node-timeout-ms", "nodeTimeoutMs"),
                      ("--cert-lifetime", "certLifetime"), ("--ca-lifetime", "caLifetime")):
        if op.get(key):
            want_args.add(f"{flag}={op[key]}")
    args = set(c.get("args", []))
    check(want_args <= args, "operator args", f"missing {sorted(want_args - args)}")
    check(c.get("resources") == values["resources"], "resources", str(c.get("resources")))
    for field, key in (("nodeSelector", "nodeSelector"), ("tolerations", "tolerations"), ("affinity", "affinity"),
                       ("priorityClassName", "priorityClassName"), ("imagePullSecrets", "imagePullSecrets")):
        if values.get(key):
            check(pod.get(field) == values[key], f"pod {field}", str(pod.get(field)))
    labels = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    check(all(labels.get(k) == v for k, v in values.get("podLabels", {}).items()), "pod labels", str(labels))

    svc = get("Service", f"{fullname}-metrics", release_ns)
    check(svc.get("spec", {}).get("ports", [{}])[0].get("port") == values["service"]["port"], "Service port")
    sm = values.get("serviceMonitor", {})
    if sm.get("enabled"):
        mon = get("ServiceMonitor", fullname, release_ns)
        check(mon.get("spec", {}).get("endpoints", [{}])[0].get("interval") == sm["interval"] and
              all(mon.get("metadata", {}).get("labels", {}).get(k) == v for k, v in sm.get("labels", {}).items()),
              "ServiceMonitor interval and labels", str(mon))
        sel = mon.get("spec", {}).get("selector", {}).get("matchLabels", {})
        svc_labels = svc.get("metadata", {}).get("labels", {})
        check(sel and all(svc_labels.get(k) == v for k, v in sel.items()), "ServiceMonitor selects the Service")
    else:
        check(not any(k == "ServiceMonitor" for k, _, _ in rendered), "no ServiceMonitor")

    cl = values.get("cluster", {})
    crs = [o for (k, _, _), o in rendered.items() if k == "DispotifyCluster"]
    if cl.get("enabled"):
        ns = cl.get("namespace") or release_ns
        cr = get("DispotifyCluster", cl["name"], ns)
        spec = cr.get("spec", {})
        want = {"replicas": cl["replicas"], "replicationFactor": cl["replicationFactor"]}
        got = {k: spec.get(k) for k in want}
        check(got == want, "DispotifyCluster replicas and R", str(got))
        if cl.get("image"):
            check(spec.get("image") == cl["image"], "DispotifyCluster image")
        check(spec.get("storage", {}).get("size") == cl["storage"]["size"] and
              spec.get("storage", {}).get("storageClassName") == (cl["storage"].get("storageClassName") or None),
              "DispotifyCluster storage", str(spec.get("storage")))
        check(spec.get("service") == cl["service"], "DispotifyCluster service", str(spec.get("service")))
        check(spec.get("monitoring", {}).get("serviceMonitor") == cl["serviceMonitor"], "DispotifyCluster monitoring")
        check(spec.get("config", {}) == {k: str(v) for k, v in cl.get("config", {}).items()},
              "DispotifyCluster config (as strings)", str(spec.get("config")))
        keep = cr.get("metadata", {}).get("annotations", {}).get("helm.sh/resource-policy") == "keep"
        check(keep == bool(cl.get("keepOnUninstall")), "DispotifyCluster resource-policy keep follows keepOnUninstall")
    else:
        check(not crs, "no DispotifyCluster")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "default":
        compare_default(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 7 and sys.argv[1] == "values":
        compare_values(*sys.argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
