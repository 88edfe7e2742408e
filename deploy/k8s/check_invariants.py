#!/usr/bin/env python3
"""Checks the rendered Kubernetes manifests against what rebound needs to run and reload safely.

    kubectl kustomize --load-restrictor LoadRestrictionsNone deploy/k8s > target/k8s-rendered.yaml
    python deploy/k8s/check_invariants.py target/k8s-rendered.yaml

Every violated invariant is reported (FAIL: ...), then the script exits 1. Schema validity is
kubernetes-validate's job; this checks the things a valid manifest can still get wrong. Needs PyYAML.
"""

import os
import re
import sys
import tomllib

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(ROOT, "rules")
RULE_EXTENSIONS = (".yaml", ".yml", ".rhai")
CONFIGMAP_LIMIT = 1024 * 1024  # etcd's limit on one object

# `rebound serve` defaults (src/serve.rs), for flags the manifest leaves out.
DEFAULTS = {
    "listen": "0.0.0.0:50051",
    "admin-listen": "127.0.0.1:50052",
    "shutdown-delay": "0s",
    "drain-timeout": "10s",
}

passed = []
failed = []


def check(ok, what, why=""):
    """Records one invariant: `what` is the rule, `why` the evidence when it does not hold."""
    if ok:
        passed.append(what)
    else:
        failed.append(f"{what}{': ' + why if why else ''}")
    return ok


def flags_of(container):
    """`serve` flags from command + args (`--flag value` or `--flag=value`), then REBOUND_* env."""
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    flags = {}
    i = 0
    while i < len(argv):
        arg = str(argv[i])
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq and i + 1 < len(argv) and not str(argv[i + 1]).startswith("--"):
                value = str(argv[i + 1])
                i += 1
            flags[name] = value
        i += 1
    for env in container.get("env") or []:
        name = env.get("name", "")
        if name.startswith("REBOUND_") and "value" in env:
            flags.setdefault(name[len("REBOUND_") :].lower().replace("_", "-"), env["value"])
    return flags


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def host_of(addr):
    return addr.rsplit(":", 1)[0].strip("[]")


def seconds(duration):
    """rebound's durations: 250ms, 10s, 30m, 1h (a bare number is seconds)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|)", str(duration).strip())
    if not m:
        raise ValueError(f"{duration!r} is not a duration")
    n, unit = int(m.group(1)), m.group(2)
    return n * {"ms": 0.001, "s": 1, "": 1, "m": 60, "h": 3600}[unit]


def cargo_version():
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        cargo = tomllib.load(f)
    version = cargo.get("package", {}).get("version")
    if not isinstance(version, str):  # `version.workspace = true`
        version = cargo.get("workspace", {}).get("package", {}).get("version")
    return version


def rule_files():
    """rules/ as the server reads it: *.yaml, *.yml, *.rhai, recursive, dot names skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(RULES, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name.endswith(RULE_EXTENSIONS):
                found.append(os.path.relpath(os.path.join(dirpath, name), RULES).replace(os.sep, "/"))
    return sorted(found)


def main(rendered):
    with open(rendered, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    deployments = by_kind.get("Deployment", [])
    if not check(len(deployments) == 1, "exactly one Deployment", f"found {len(deployments)}"):
        return
    deployment = deployments[0]
    pod = deployment["spec"]["template"]["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
    containers = [c for c in pod["containers"] if c["name"] == "rebound"]
    if not check(len(containers) == 1, "one container named rebound", f"found {len(containers)}"):
        return
    container = containers[0]
    flags = flags_of(container)
    listen = flags.get("listen", DEFAULTS["listen"])
    admin = flags.get("admin-listen", DEFAULTS["admin-listen"])
    grpc_port, admin_port = port_of(listen), port_of(admin)

    # Rules: a directory mount of the ConfigMap, exactly where --rules points, never subPath.
    rules_dir = flags.get("rules")
    if check(bool(rules_dir), "the server is given a rule directory (--rules or REBOUND_RULES)", "neither is set"):
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == rules_dir]
        check(
            len(mounts) == 1,
            f"one volume is mounted at the --rules directory {rules_dir}",
            f"{len(mounts)} mounts there",
        )
        for m in mounts:
            volume_name = m["name"]
            for other in container.get("volumeMounts") or []:
                if other["name"] == volume_name:
                    check(
                        "subPath" not in other and "subPathExpr" not in other,
                        f"the rules volume is mounted without subPath (at {other['mountPath']})",
                        "a subPath mount is never updated, so rule changes would never reach the pod",
                    )
            check(m.get("readOnly") is True, "the rules volume is mounted readOnly")
            volume = next((v for v in pod.get("volumes") or [] if v["name"] == volume_name), {})
            check_rules_volume(volume, by_kind.get("ConfigMap", []))

    # Probes: Kubernetes' gRPC probes on the gRPC port (grpc.health.v1 is served there).
    container_ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    check(
        container_ports.get("grpc") == grpc_port,
        f"the container port named grpc is the --listen port {grpc_port}",
        f"it is {container_ports.get('grpc')}",
    )
    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = container.get(probe_name) or {}
        kinds = [k for k in ("grpc", "httpGet", "tcpSocket", "exec") if k in probe]
        check(kinds == ["grpc"], f"{probe_name} is a grpc probe", f"it is {kinds or 'missing'}")
        port = (probe.get("grpc") or {}).get("port")
        check(port == grpc_port, f"{probe_name} asks the gRPC port {grpc_port}", f"it asks {port}")

    # Admin: loopback only, so no Service, container port or NetworkPolicy may offer it.
    check(
        host_of(admin) in ("127.0.0.1", "::1", "localhost"),
        "the admin API listens on loopback",
        f"--admin-listen is {admin}",
    )
    check(
        admin_port not in container_ports.values(),
        f"the container declares no admin port ({admin_port})",
    )
    for svc in by_kind.get("Service", []):
        for p in svc["spec"].get("ports") or []:
            target = p.get("targetPort", p["port"])
            target = container_ports.get(target, target)
            check(
                admin_port not in (p["port"], target),
                f"Service {svc['metadata']['name']} does not expose the admin port {admin_port}",
                f"its port {p.get('name') or ''} {p['port']} -> container port {target}",
            )
    for np in by_kind.get("NetworkPolicy", []):
        for rule in np["spec"].get("ingress") or []:
            ports = [container_ports.get(p.get("port"), p.get("port")) for p in rule.get("ports") or []]
            check(
                bool(ports) and admin_port not in ports,
                f"NetworkPolicy {np['metadata']['name']} admits only listed ports, never the admin port",
                f"ingress ports {ports or 'all'}",
            )

    # Services: one ClusterIP and one headless, both selecting the pods.
    services = by_kind.get("Service", [])
    headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
    check(len(headless) == 1, "one headless Service (clusterIP: None) for client-side balancing", f"found {len(headless)}")
    check(len(services) - len(headless) >= 1, "a ClusterIP Service")
    for svc in services:
        selector = svc["spec"].get("selector") or {}
        check(
            bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items()),
            f"Service {svc['metadata']['name']} selects the rebound pods",
            f"selector {selector}, pod labels {pod_labels}",
        )

    # Image: tagged with the package version.
    version = cargo_version()
    image = container.get("image", "")
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    check(tag == version, f"the image tag is the Cargo.toml version {version}", f"image is {image!r}")

    # Security context, container level or inherited from the pod.
    psc, csc = pod.get("securityContext") or {}, container.get("securityContext") or {}
    non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
    check(non_root is True, "securityContext: runAsNonRoot: true", f"it is {non_root}")
    for key, want in (("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False)):
        check(csc.get(key) is want, f"container securityContext: {key}: {str(want).lower()}", f"it is {csc.get(key)}")
    check(csc.get("privileged") in (None, False), "container securityContext: not privileged")
    drop = (csc.get("capabilities") or {}).get("drop") or []
    check("ALL" in drop, "container securityContext: capabilities drop ALL", f"drop is {drop}")
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    check(seccomp == "RuntimeDefault", "securityContext: seccompProfile RuntimeDefault", f"it is {seccomp}")

    # Stopping: preStop sleep + --shutdown-delay + --drain-timeout fit in the grace period.
    pre_stop = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    check(pre_stop > 0, "a preStop sleep lets endpoints catch up before SIGTERM")
    needed = pre_stop + seconds(flags.get("shutdown-delay", DEFAULTS["shutdown-delay"])) + seconds(
        flags.get("drain-timeout", DEFAULTS["drain-timeout"])
    )
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(
        needed < grace,
        "preStop sleep + shutdown delay + drain timeout < terminationGracePeriodSeconds",
        f"{needed:g} s needed, {grace} s granted",
    )

    # Scaling: the autoscaler owns the replica count; a disruption budget covers the pods.
    hpas = [
        h
        for h in by_kind.get("HorizontalPodAutoscaler", [])
        if h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ]
    check(len(hpas) == 1, "a HorizontalPodAutoscaler targets the Deployment", f"found {len(hpas)}")
    check(
        "replicas" not in deployment["spec"],
        "the Deployment leaves replicas to the autoscaler",
        "every apply would reset the autoscaled count",
    )
    pdbs = by_kind.get("PodDisruptionBudget", [])
    check(
        any(all(pod_labels.get(k) == v for k, v in (p["spec"]["selector"].get("matchLabels") or {}).items()) for p in pdbs),
        "a PodDisruptionBudget selects the pods",
    )


def check_rules_volume(volume, configmaps):
    """The ConfigMap holds every rule file byte for byte, and the items put each at its path."""
    source = volume.get("configMap")
    if not check(source is not None, "the rules volume is a configMap volume", f"it is {sorted(volume)}"):
        return
    cm = next((c for c in configmaps if c["metadata"]["name"] == source["name"]), None)
    if not check(cm is not None, f"the ConfigMap {source['name']} is part of the manifests"):
        return
    with open(os.path.join(HERE, "kustomization.yaml"), encoding="utf-8") as f:
        generated = [g["name"] for g in yaml.safe_load(f).get("configMapGenerator") or []]
    check(
        source["name"] in generated,
        "the rules ConfigMap keeps its name (disableNameSuffixHash), so changes update it in place",
        f"{source['name']!r} is not one of the generator names {generated}",
    )
    data = cm.get("data") or {}
    size = sum(len(v.encode()) for v in data.values()) + sum(len(v) for v in (cm.get("binaryData") or {}).values())
    check(size < CONFIGMAP_LIMIT, "the rules fit in one ConfigMap (1 MiB)", f"{size} bytes")
    items = {i["path"]: i["key"] for i in source.get("items") or []}
    files = rule_files()
    stale = "run `python3 deploy/k8s/gen-rules-configmap.py`"
    missing_items = [f for f in files if f not in items]
    check(not missing_items, "every rule file under rules/ has a volume item at its relative path", f"{missing_items}; {stale}")
    extra_items = sorted(set(items) - set(files))
    check(not extra_items, "every volume item is a rule file under rules/", f"{extra_items}; {stale}")
    missing_keys = sorted(k for k in items.values() if k not in data)
    check(not missing_keys, "every volume item's key is in the ConfigMap", f"{missing_keys}")
    extra_keys = sorted(set(data) - set(items.values()))
    check(not extra_keys, "every ConfigMap key is mounted by an item", f"{extra_keys}")
    differ = []
    for rel in files:
        if rel in items and items[rel] in data:
            with open(os.path.join(RULES, rel), encoding="utf-8") as f:
                if f.read() != data[items[rel]]:
                    differ.append(rel)
    check(not differ, "the ConfigMap holds each rule file's exact content", f"{differ}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
    for f in failed:
        print(f"FAIL: {f}")
    print(f"invariants: {len(passed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)
