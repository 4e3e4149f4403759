#!/usr/bin/env python3
"""Runs clang-tidy on each FILE, skipping the files it has passed on before with exactly the same
inputs, and exits non-zero when any run fails (its output is printed).

    clang-tidy-cached.py BUILD_DIR FILE...      (JOBS: $LINT_JOBS, default 2)

clang-tidy is the costliest part of the suite (about 14 minutes of CPU on 2 cores) and its verdict
depends only on its inputs, like a compiler's: the clang-tidy version, .clang-tidy, the file's
compile command, and the contents of every file the compilation read, as Ninja recorded them for
the file's object (`ninja -t deps`). A pass is remembered under the SHA-256 of all of those, in
$DISPOTIFY_CACHE/clang-tidy (default ~/.cache/dispotify/clang-tidy); paths inside the checkout and
the build directory are written relative to them, so another clone (a CI run) hits the same
entries. A file whose dependencies Ninja does not know yet (not built) is always checked. Only
passes are remembered: a failing file is checked again every time.
"""
import concurrent.futures
import hashlib
import json
import os
import pathlib
import shlex
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def cache_dir() -> pathlib.Path:
    base = os.environ.get("DISPOTIFY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dispotify")
    return pathlib.Path(base) / "clang-tidy"


_content_hashes: dict = {}


def content_hash(path: str) -> str:
    if path not in _content_hashes:
        try:
            _content_hashes[path] = hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
        except OSError:
            _content_hashes[path] = "missing"
    return _content_hashes[path]


def deps_of(build_dir: pathlib.Path, obj: str):
    """The files Ninja recorded as read when compiling `obj`; None when it has no valid record."""
    out = subprocess.run(["ninja", "-C", str(build_dir), "-t", "deps", obj], capture_output=True, text=True)
    lines = out.stdout.splitlines()
    if out.returncode != 0 or not lines or "(VALID)" not in lines[0]:
        return None
    return [line.strip() for line in lines[1:] if line.strip()]


def cache_key(build_dir: pathlib.Path, entry: dict, tidy_version: str, config: bytes):
    args = shlex.split(entry["command"])
    if "-o" not in args:
        return None
    obj = args[args.index("-o") + 1]
    deps = deps_of(build_dir, obj)
    if deps is None:
        return None

    def rel(text: str) -> str:
        return text.replace(str(build_dir.resolve()), "<build>").replace(str(REPO), "<src>")

    h = hashlib.sha256()
    for part in (tidy_version, config.hex(), rel(entry["command"])):
        h.update(part.encode() + b"\0")
    for dep in sorted(deps):
        full = dep if os.path.isabs(dep) else str(build_dir / dep)
        h.update(rel(os.path.abspath(full)).encode() + b"\0" + content_hash(full).encode() + b"\0")
    return h.hexdigest()


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    build_dir = pathlib.Path(sys.argv[1]).resolve()
    files = sys.argv[2:]
    entries = {str(pathlib.Path(e["file"]).resolve()): e
               for e in json.loads((build_dir / "compile_commands.json").read_text())}
    tidy_version = subprocess.run(["clang-tidy", "--version"], capture_output=True, text=True).stdout
    config = (REPO / ".clang-tidy").read_bytes()
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)

    todo = []  # (file, key or None)
    for f in files:
        entry = entries.get(str((REPO / f).resolve()))
        key = cache_key(build_dir, entry, tidy_version, config) if entry else None
        if key is not None and (cache / key).exists():
            continue
        todo.append((f, key))

    def check(item):
        f, key = item
        r = subprocess.run(["clang-tidy", "--quiet", "-p", str(build_dir), f], cwd=REPO, capture_output=True,
                           text=True)
        if r.returncode == 0 and key is not None:
            (cache / key).touch()
        return f, r

    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(os.environ.get("LINT_JOBS", "2"))) as pool:
        for f, r in pool.map(check, todo):
            if r.returncode != 0:
                failed += 1
                sys.stdout.write(r.stdout)
                sys.stderr.write(r.stderr)
                print(f"clang-tidy: {f} failed", file=sys.stderr)
    print(f"clang-tidy: {len(files)} files, {len(files) - len(todo)} unchanged since a pass (cached), "
          f"{len(todo)} checked, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
