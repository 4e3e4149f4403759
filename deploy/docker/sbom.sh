#!/usr/bin/env bash
# Writes the SPDX 2.3 (JSON) software bill of materials of a runtime image laid out by
# collect-rootfs.sh: the image's own package, the Debian package of every shared library copied
# into it (as dpkg on the build machine owns the file: name, version, architecture, a purl), and,
# when the web UI is in the image, the npm packages bundled into it (the production entries of
# web/package-lock.json; dev-only ones such as vite or vitest never reach the bundle).
#   deploy/docker/sbom.sh OUT.spdx.json NAME VERSION [--npm-lock package-lock.json] LIBRARY...
# A library no Debian package owns is an error: an SBOM that silently misses a file is worse than
# none. Needs dpkg-query; node (for the lock file) only with --npm-lock.
set -euo pipefail

[[ $# -ge 3 ]] || { echo "usage: $0 OUT NAME VERSION [--npm-lock FILE] LIBRARY..." >&2; exit 2; }
out=$1 name=$2 version=$3
shift 3
lock=""
if [[ "${1:-}" == "--npm-lock" ]]; then
  lock=$2
  shift 2
fi

# SPDX ids allow letters, digits, '.' and '-' only.
spdx_id() { printf '%s' "$1" | tr -c 'A-Za-z0-9.-' '-'; }
# Package names and versions here are Debian's and npm's: no quotes, backslashes or controls,
# which the check below keeps true, so they are written into JSON as they are.
purl_escape() { local v=${1//+/%2B}; printf '%s' "${v//:/%3A}"; }
json_safe() { [[ "$1" =~ ^[A-Za-z0-9@/._+:~-]+$ ]] || { echo "sbom: unexpected characters in '$1'" >&2; exit 1; }; }

# One dpkg-query call for all the files (each call reads dpkg's whole file database).
# Debian 12 has a merged /usr: ldd says /lib/..., dpkg knows /usr/lib/... (or the other way), so
# every library is asked for under its real path and its other spellings.
declare -A owner_of=()  # path -> package
paths=()
for lib in "$@"; do paths+=("$lib" "$(readlink -f "$lib")" "/usr$lib" "${lib#/usr}"); done
while IFS= read -r line; do
  # "libssl3:amd64: /usr/lib/x86_64-linux-gnu/libssl.so.3" (diversions and ", " lists aside)
  [[ "$line" == *": /"* ]] || continue
  pkg=${line%%: /*} path=/${line#*: /}
  owner_of["$path"]=${pkg%%:*}
done < <(dpkg-query -S "${paths[@]}" 2>/dev/null || true)
owners=()
for lib in "$@"; do
  owner=""
  for path in "$lib" "$(readlink -f "$lib")" "/usr$lib" "${lib#/usr}"; do
    owner=${owner_of["$path"]:-}
    [[ -n "$owner" ]] && break
  done
  [[ -n "$owner" && "$owner" != *,* ]] || { echo "sbom: no single Debian package owns $lib" >&2; exit 1; }
  owners+=("$owner")
done
declare -A debs=()  # "package arch" -> version
if ((${#owners[@]} > 0)); then
  while read -r pkg arch ver; do
    debs["$pkg $arch"]=$ver
  done < <(dpkg-query -W -f='${Package} ${Architecture} ${Version}\n' $(printf '%s\n' "${owners[@]}" | sort -u))
fi

npms=()
if [[ -n "$lock" ]]; then
  mapfile -t npms < <(node -e '
    const lock = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    for (const [path, p] of Object.entries(lock.packages || {})) {
      if (!path.startsWith("node_modules/") || p.dev || p.devOptional) continue;
      console.log(path.slice(path.lastIndexOf("node_modules/") + 13) + " " + p.version);
    }' "$lock" | sort -u)
  ((${#npms[@]} > 0)) || { echo "sbom: no production npm package in $lock" >&2; exit 1; }
fi

json_safe "$name"
json_safe "$version"
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# Unique per document, as SPDX asks; derived from what it lists, so the same image gets the same.
digest=$( { echo "$name $version"; printf '%s\n' "${!debs[@]}" "${debs[@]}" "${npms[@]}"; } | sort | sha256sum | cut -c1-32)
main_id="SPDXRef-Package-$(spdx_id "$name")"
{
  printf '{\n  "spdxVersion": "SPDX-2.3",\n  "dataLicense": "CC0-1.0",\n  "SPDXID": "SPDXRef-DOCUMENT",\n'
  printf '  "name": "%s-%s",\n' "$name" "$version"
  printf '  "documentNamespace": "https://spdx.dispotify.invalid/%s/%s-%s",\n' "$name" "$version" "$digest"
  printf '  "creationInfo": {"created": "%s", "creators": ["Tool: dispotify-deploy-docker-sbom.sh"]},\n' "$created"
  printf '  "packages": [\n'
  printf '    {"name": "%s", "SPDXID": "%s", "versionInfo": "%s", "downloadLocation": "NOASSERTION",' \
    "$name" "$main_id" "$version"
  printf ' "filesAnalyzed": false, "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",'
  printf ' "copyrightText": "NOASSERTION", "primaryPackagePurpose": "CONTAINER"}'
  rels=()
  for key in $(printf '%s\n' "${!debs[@]}" | tr ' ' '|' | sort); do
    pkg=${key%|*} arch=${key#*|} ver=${debs["$pkg $arch"]}
    json_safe "$pkg"; json_safe "$ver"
    id="SPDXRef-deb-$(spdx_id "$pkg")"
    printf ',\n    {"name": "%s", "SPDXID": "%s", "versionInfo": "%s", "supplier": "Organization: Debian",' "$pkg" "$id" "$ver"
    printf ' "downloadLocation": "NOASSERTION", "filesAnalyzed": false, "licenseConcluded": "NOASSERTION",'
    printf ' "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION", "primaryPackagePurpose": "LIBRARY",'
    printf ' "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",'
    printf ' "referenceLocator": "pkg:deb/debian/%s@%s?arch=%s&distro=debian-12"}]}' "$pkg" "$(purl_escape "$ver")" "$arch"
    rels+=("$id")
  done
  for entry in "${npms[@]}"; do
    pkg=${entry% *} ver=${entry#* }
    json_safe "$pkg"; json_safe "$ver"
    id="SPDXRef-npm-$(spdx_id "$pkg")"
    purl_name=${pkg/@/%40}
    printf ',\n    {"name": "%s", "SPDXID": "%s", "versionInfo": "%s", "downloadLocation": "NOASSERTION",' "$pkg" "$id" "$ver"
    printf ' "filesAnalyzed": false, "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",'
    printf ' "copyrightText": "NOASSERTION", "primaryPackagePurpose": "LIBRARY",'
    printf ' "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",'
    printf ' "referenceLocator": "pkg:npm/%s@%s"}]}' "$purl_name" "$ver"
    rels+=("$id")
  done
  printf '\n  ],\n  "relationships": [\n'
  printf '    {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "%s"}' "$main_id"
  for id in "${rels[@]}"; do
    printf ',\n    {"spdxElementId": "%s", "relationshipType": "CONTAINS", "relatedSpdxElement": "%s"}' "$main_id" "$id"
  done
  printf '\n  ]\n}\n'
} >"$out"
echo "sbom: $out lists ${#debs[@]} Debian and ${#npms[@]} npm packages" >&2
