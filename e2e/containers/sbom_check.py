#!/usr/bin/env python3
"""Checks an image's SBOM (deploy/docker/sbom.sh) against the image itself, independently of how
sbom.sh finds packages: every shared library in the image's root file system belongs to a Debian
package the SBOM lists at the version dpkg has installed, the SBOM lists no Debian package that
owns none of them, and, with --npm-lock, it lists exactly the production packages of the lock file.

    sbom_check.py SBOM.json ROOTFS [--npm-lock package-lock.json]

Exit 0 and one summary line when it holds; 1 naming every difference otherwise.
"""
import json
import os
import subprocess
import sys


def main(argv):
    if len(argv) not in (3, 5) or (len(argv) == 5 and argv[3] != "--npm-lock"):
        print(__doc__, file=sys.stderr)
        return 2
    sbom = json.load(open(argv[1]))
    rootfs = argv[2]
    problems = []
    if sbom.get("spdxVersion") != "SPDX-2.3":
        problems.append(f"spdxVersion is {sbom.get('spdxVersion')!r}")

    listed_debs, listed_npm = {}, {}
    for p in sbom["packages"]:
        purls = [r["referenceLocator"] for r in p.get("externalRefs", []) if r.get("referenceType") == "purl"]
        if any(u.startswith("pkg:deb/") for u in purls):
            listed_debs[p["name"]] = p["versionInfo"]
        elif any(u.startswith("pkg:npm/") for u in purls):
            listed_npm[p["name"]] = p["versionInfo"]

    # The libraries actually in the image, and who owns each on this (the build) machine.
    libs = []
    for d, _, files in os.walk(rootfs):
        for f in files:
            path = os.path.join(d, f)
            if (".so" in f or f.startswith("ld-linux")) and not os.path.islink(path):
                libs.append("/" + os.path.relpath(path, rootfs))
    owners = {}
    for lib in libs:
        owner = None
        for candidate in (lib, "/usr" + lib, lib.removeprefix("/usr")):
            r = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
            if r.returncode == 0:
                owner = r.stdout.split(":")[0]
                break
        if owner is None:
            problems.append(f"{lib}: no Debian package owns it")
        else:
            owners.setdefault(owner, []).append(lib)
    for pkg, files in sorted(owners.items()):
        installed = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True).stdout
        if pkg not in listed_debs:
            problems.append(f"{pkg} ({', '.join(files)}) is in the image but not in the SBOM")
        elif listed_debs[pkg] != installed:
            problems.append(f"{pkg}: SBOM says {listed_debs[pkg]}, dpkg has {installed}")
    for pkg in sorted(set(listed_debs) - set(owners)):
        problems.append(f"{pkg} is in the SBOM but owns no library of the image")

    if len(argv) == 5:
        lock = json.load(open(argv[4]))
        want = {path.split("node_modules/")[-1]: p["version"] for path, p in lock["packages"].items()
                if path.startswith("node_modules/") and not p.get("dev") and not p.get("devOptional")}
        if want != listed_npm:
            problems.append(f"npm packages differ: lock {sorted(want.items())}, SBOM {sorted(listed_npm.items())}")

    for p in problems:
        print(f"sbom_check: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"sbom_check: {argv[1]}: {len(libs)} libraries from {len(owners)} Debian packages and "
          f"{len(listed_npm)} npm packages, all listed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
