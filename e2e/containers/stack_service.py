#!/usr/bin/env python3
"""Turns one service of a Swarm stack file into `podman run` arguments for one task slot.

    stack_service.py STACK SERVICE --slot N --prefix P          the arguments, NUL-separated
    stack_service.py STACK SERVICE --replicas                    deploy.replicas
    stack_service.py STACK SERVICE --healthcheck                 healthcheck.test, as JSON
    stack_service.py STACK SERVICE --secrets                     the secrets' names, one a line
    stack_service.py STACK SERVICE --aliases                     tasks.<service> (Swarm's name for
                                                                 every task of the service)

e2e/containers/image-test.sh starts its cluster with these, so the settings proven there are the
stack's own. Every key of the service must be one this script maps or one it knowingly leaves to
the test (image, ports, networks, deploy, healthcheck); any other key is an error, so a setting
added to the stack cannot silently go untested. Names the test creates (volumes, secrets) get
PREFIX so that parallel runs and a real deployment on the same machine never collide.
"""
import argparse
import json
import re
import shlex
import sys

import yaml

# Keys the caller handles itself: the image is the one under test, ports are published on
# 127.0.0.1 by the test, networks become one podman network, deploy gives the replica count (the
# resource limits need cgroup controllers a test machine may not delegate), the healthcheck is
# compared with the image's HEALTHCHECK, which `podman healthcheck run` exercises.
LEFT_TO_CALLER = {"image", "ports", "networks", "deploy", "healthcheck"}
MAPPED = {"command", "entrypoint", "environment", "user", "read_only", "cap_drop", "cap_add", "hostname",
          "volumes", "secrets", "stop_grace_period", "stop_signal"}

TEMPLATE = re.compile(r"\{\{\s*\.Task\.Slot\s*\}\}")


def fail(msg):
    print(f"stack_service.py: {msg}", file=sys.stderr)
    sys.exit(1)


def substitute(value, slot):
    out = TEMPLATE.sub(str(slot), str(value))
    if "{{" in out:
        fail(f"'{value}': only {{{{.Task.Slot}}}} is supported by this test")
    return out


def seconds(text):
    """Compose durations ("30s", "1m30s") to whole seconds."""
    total, matched = 0, False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", str(text)):
        matched = True
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    if not matched:
        fail(f"'{text}' is not a duration")
    return max(1, int(total))


def podman_args(stack, name, service, slot, prefix):
    unknown = set(service) - LEFT_TO_CALLER - MAPPED
    if unknown:
        fail(f"service {name}: keys this test does not know how to run: {sorted(unknown)}")
    args = []
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    for key, value in env.items():
        args += ["--env", f"{key}={substitute('' if value is None else value, slot)}"]
    if "user" in service:
        args += ["--user", str(service["user"])]
    if service.get("read_only"):
        args.append("--read-only")
    for cap in service.get("cap_drop") or []:
        args += ["--cap-drop", cap]
    for cap in service.get("cap_add") or []:
        args += ["--cap-add", cap]
    if "hostname" in service:
        hostname = substitute(service["hostname"], slot)
        # Swarm makes a task's hostname a DNS alias on its networks.
        args += ["--hostname", hostname, "--network-alias", hostname]
    top_volumes = stack.get("volumes") or {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            fail(f"service {name}: use the long volume syntax (type/source/target): '{volume}'")
        kind = volume.get("type")
        if kind == "volume":
            source = volume["source"]
            declared = top_volumes.get(source) or {}
            volume_name = substitute(declared.get("name", source), slot)
            args += ["--volume", f"{prefix}{volume_name}:{volume['target']}" + (":ro" if volume.get("read_only") else "")]
        elif kind == "tmpfs":
            options = ["rw", "mode=1777"]
            size = (volume.get("tmpfs") or {}).get("size")
            if size:
                options.append(f"size={size}")
            args += ["--tmpfs", f"{volume['target']}:{','.join(options)}"]
        else:
            fail(f"service {name}: volume type {kind} is not mapped by this test")
    if service.get("secrets") and service.get("read_only"):
        # Podman mounts a read-only root before it bind-mounts the secret files, so their mount
        # points need a writable directory; Docker creates them before it makes the root read-only.
        args += ["--tmpfs", "/run/secrets:rw,size=65536,mode=0755"]
    for secret in service.get("secrets") or []:
        if isinstance(secret, str):
            secret = {"source": secret}
        target = secret.get("target", secret["source"])
        spec = [f"{prefix}{secret['source']}", "type=mount", f"target={target}"]
        for key in ("uid", "gid"):
            if key in secret:
                spec.append(f"{key}={secret[key]}")
        if "mode" in secret:
            spec.append(f"mode={int(secret['mode']):o}")
        args += ["--secret", ",".join(spec)]
    if "stop_grace_period" in service:
        args += ["--stop-timeout", str(seconds(service["stop_grace_period"]))]
    if "stop_signal" in service:
        args += ["--stop-signal", str(service["stop_signal"])]
    entrypoint = service.get("entrypoint")
    if entrypoint is not None:
        entrypoint = shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint)
        args += ["--entrypoint", json.dumps([substitute(a, slot) for a in entrypoint])]
    command = service.get("command")
    command = [] if command is None else (shlex.split(command) if isinstance(command, str) else list(command))
    # The image comes next on the command line; the caller puts it between the two parts.
    return args, [substitute(a, slot) for a in command]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("stack")
    p.add_argument("service")
    p.add_argument("--slot", type=int)
    p.add_argument("--prefix", default="")
    p.add_argument("--replicas", action="store_true")
    p.add_argument("--healthcheck", action="store_true")
    p.add_argument("--secrets", action="store_true")
    p.add_argument("--aliases", action="store_true")
    a = p.parse_args()
    with open(a.stack) as f:
        stack = yaml.safe_load(f)
    service = (stack.get("services") or {}).get(a.service)
    if service is None:
        fail(f"{a.stack} has no service {a.service}")
    if a.replicas:
        print((service.get("deploy") or {}).get("replicas", 1))
    elif a.healthcheck:
        print(json.dumps((service.get("healthcheck") or {}).get("test")))
    elif a.secrets:
        for secret in service.get("secrets") or []:
            print(secret if isinstance(secret, str) else secret["source"])
    elif a.aliases:
        print(f"tasks.{a.service}")
    else:
        if a.slot is None:
            fail("--slot is needed")
        args, command = podman_args(stack, a.service, service, a.slot, a.prefix)
        # Options, then "--" as the image's place, then the command: NUL-separated for bash's mapfile.
        sys.stdout.write("\0".join(args + ["--"] + command) + "\0")


if __name__ == "__main__":
    main()
