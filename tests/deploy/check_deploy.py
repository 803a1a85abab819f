#!/usr/bin/env python3
"""The deployment checks that need no cluster: what scripts/test-deploy.sh runs.

It renders every kustomization under deploy/k8s (base and overlays) with `kubectl kustomize`,
validates every object against the Kubernetes schema (kubernetes-validate, strict), and checks
what a schema cannot:

- the process list tickflow-entrypoint derives for 1, 2 and 4 replicas is exactly the
  StatefulSet's pods' DNS names behind its headless Service, the same in every pod, and each
  pod's status server lands on the port its probes and scrape annotations name;
- every overlay keeps REPLICAS equal to spec.replicas;
- every probe path exists on the status server (its route list in the source, and live);
- every ConfigMap, Secret (and Secret key), PVC, Service and scale target referenced is
  defined; no ConfigMap holds a secret; every image is pinned;
- each rendered cluster.toml passes `tickflow check`;
- docker/compose.yml passes `docker-compose config -q`, and its shape (health-based
  depends_on, a market source, pinned images, checkpoint volume, .dockerignore);
- a real 2-process cluster, started exactly as the StatefulSet's command starts it (the same
  entry script and env, ordinals 0..1), with the headless Service's names resolving to
  loopback addresses inside a private mount namespace, forms one cluster and processes every
  bar once.

Usage: check_deploy.py --kubectl K --compose C --tickflow T   (prints "N passed, N failed")
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
# The Kubernetes version whose schemas the objects are validated against (shipped by the
# pinned kubernetes-validate).
K8S_VERSION = "1.32.0"
# The path the image installs deploy/entrypoint.sh at (docker/Dockerfile).
IMAGE_ENTRYPOINT = "/usr/local/bin/tickflow-entrypoint"

ARGS: argparse.Namespace
RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    RESULTS.append((name, ok, detail))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return ok


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- rendering


def kustomizations() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def render(d: Path) -> list[dict]:
    r = run([ARGS.kubectl, "kustomize", str(d)])
    if r.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {d.relative_to(ROOT)}: {r.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(r.stdout) if doc]


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind]


def named(objs: list[dict], kind: str, name: str) -> dict | None:
    return next((o for o in by_kind(objs, kind) if o["metadata"]["name"] == name), None)


def pod_specs(objs: list[dict]):
    """(owner, pod spec) of every workload."""
    for o in objs:
        k = o.get("kind")
        if k in ("Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"):
            yield o, o["spec"]["template"]["spec"]
        elif k == "CronJob":
            yield o, o["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec.get("containers", [])


def tickflow_sts(objs: list[dict]) -> dict:
    for sts in by_kind(objs, "StatefulSet"):
        for c in sts["spec"]["template"]["spec"]["containers"]:
            if c.get("command", [None])[0] == IMAGE_ENTRYPOINT:
                return sts
    raise AssertionError("no StatefulSet runs tickflow-entrypoint")


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def example_secrets() -> dict[str, set[str]]:
    """Secrets documented with placeholder values (not necessarily rendered)."""
    out: dict[str, set[str]] = {}
    for p in K8S.rglob("*secret*.example.yaml"):
        for doc in yaml.safe_load_all(p.read_text()):
            if doc and doc.get("kind") == "Secret":
                keys = set(doc.get("stringData", {})) | set(doc.get("data", {}))
                out.setdefault(doc["metadata"]["name"], set()).update(keys)
    return out


# ---------------------------------------------------------------- checks: kubernetes


def check_schema(name: str, objs: list[dict]) -> None:
    bad = []
    for o in objs:
        try:
            kubernetes_validate.validate(o, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            bad.append(f"{o['kind']}/{o['metadata']['name']}: {e.message} at {'/'.join(map(str, e.path))}")
        except Exception as e:  # SchemaNotFoundError and friends
            bad.append(f"{o.get('kind')}/{o.get('metadata', {}).get('name')}: {e}")
    check(f"{name}: {len(objs)} objects valid against the Kubernetes {K8S_VERSION} schema (strict)", not bad, "; ".join(bad))


def check_references(name: str, objs: list[dict]) -> None:
    cms = {o["metadata"]["name"] for o in by_kind(objs, "ConfigMap")}
    secrets = {o["metadata"]["name"]: set(o.get("stringData", {})) | set(o.get("data", {})) for o in by_kind(objs, "Secret")}
    for s, keys in example_secrets().items():
        secrets.setdefault(s, set()).update(keys)
    pvcs = {o["metadata"]["name"] for o in by_kind(objs, "PersistentVolumeClaim")}
    services = {o["metadata"]["name"]: o for o in by_kind(objs, "Service")}
    missing = []
    for owner, spec in pod_specs(objs):
        where = f"{owner['kind']}/{owner['metadata']['name']}"
        templates = {t["metadata"]["name"] for t in owner.get("spec", {}).get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            if "configMap" in v and v["configMap"]["name"] not in cms:
                missing.append(f"{where}: ConfigMap {v['configMap']['name']}")
            if "secret" in v and v["secret"]["secretName"] not in secrets:
                missing.append(f"{where}: Secret {v['secret']['secretName']}")
            if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in pvcs:
                missing.append(f"{where}: PVC {v['persistentVolumeClaim']['claimName']}")
        for c in containers(spec):
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes and m["name"] not in templates:
                    missing.append(f"{where}: volume {m['name']} (mounted by {c['name']})")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    s, k = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
                    if s not in secrets or k not in secrets[s]:
                        missing.append(f"{where}: Secret {s} key {k} (env {e['name']})")
                if "configMapKeyRef" in ref and ref["configMapKeyRef"]["name"] not in cms:
                    missing.append(f"{where}: ConfigMap {ref['configMapKeyRef']['name']}")
            for ef in c.get("envFrom", []):
                if "secretRef" in ef and ef["secretRef"]["name"] not in secrets:
                    missing.append(f"{where}: Secret {ef['secretRef']['name']}")
                if "configMapRef" in ef and ef["configMapRef"]["name"] not in cms:
                    missing.append(f"{where}: ConfigMap {ef['configMapRef']['name']}")
            ports = {p.get("name") for p in c.get("ports", [])} | {p["containerPort"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                action = c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket")
                if action and action["port"] not in ports:
                    missing.append(f"{where}: {probe} port {action['port']} is no container port")
        if owner["kind"] == "StatefulSet":
            svc = services.get(owner["spec"]["serviceName"])
            if svc is None:
                missing.append(f"{where}: serviceName {owner['spec']['serviceName']}")
    for hpa in by_kind(objs, "HorizontalPodAutoscaler"):
        t = hpa["spec"]["scaleTargetRef"]
        if named(objs, t["kind"], t["name"]) is None:
            missing.append(f"HPA/{hpa['metadata']['name']}: {t['kind']} {t['name']}")
    labels_of_pods = [o["spec"]["template"]["metadata"].get("labels", {}) for o, _ in pod_specs(objs) if o["kind"] != "Job"]
    for sel_owner in by_kind(objs, "Service") + by_kind(objs, "PodDisruptionBudget"):
        sel = sel_owner["spec"].get("selector") or {}
        sel = sel.get("matchLabels", sel) if sel_owner["kind"] == "PodDisruptionBudget" else sel
        if sel and not any(all(lbl.get(k) == v for k, v in sel.items()) for lbl in labels_of_pods):
            missing.append(f"{sel_owner['kind']}/{sel_owner['metadata']['name']}: selector {sel} matches no pod")
    check(f"{name}: every referenced ConfigMap, Secret (and key), PVC, volume, port, Service and target is defined", not missing, "; ".join(missing))


SECRET_LINE = re.compile(r'^\s*(token|basic-auth|password|telegram-bot-token|api-key|tokens)\s*=\s*"[^"]+"', re.M)


def check_no_secrets_in_configmaps(name: str, objs: list[dict]) -> None:
    bad = []
    for cm in by_kind(objs, "ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            for m in SECRET_LINE.finditer(text):
                bad.append(f"ConfigMap {cm['metadata']['name']} {key}: {m.group(0).strip()}")
            if re.search(r"password:\s*[^$\s{]", text) and key.endswith(".yaml"):
                bad.append(f"ConfigMap {cm['metadata']['name']} {key}: a literal password")
    for owner, spec in pod_specs(objs):
        for c in containers(spec):
            for e in c.get("env", []):
                if re.search(r"TOKEN|PASSWORD|SECRET|API_KEY", e["name"]) and e.get("value"):
                    bad.append(f"{owner['kind']}/{owner['metadata']['name']} env {e['name']} has a literal value")
    check(f"{name}: no secret in a ConfigMap or a literal env value", not bad, "; ".join(bad))


def check_images_pinned(name: str, objs: list[dict]) -> None:
    bad = []
    for owner, spec in pod_specs(objs):
        for c in containers(spec):
            img = c["image"]
            tag = img.rsplit("/", 1)[-1].partition(":")[2]
            if not tag or tag == "latest":
                bad.append(f"{owner['metadata']['name']}/{c['name']}: {img}")
    check(f"{name}: every image has a pinned tag", not bad, "; ".join(bad))


def check_replicas_env(name: str, objs: list[dict]) -> None:
    sts = tickflow_sts(objs)
    c = sts["spec"]["template"]["spec"]["containers"][0]
    env = env_of(c).get("REPLICAS", {}).get("value")
    ok = env == str(sts["spec"]["replicas"])
    check(f"{name}: REPLICAS env ({env}) equals spec.replicas ({sts['spec']['replicas']})", ok)
    spec = sts["spec"]
    shape = (spec.get("podManagementPolicy"), spec.get("updateStrategy", {}).get("type"))
    check(f"{name}: the cluster starts in parallel and is never rolled pod by pod", shape == ("Parallel", "OnDelete"), str(shape))


STATUS_ROUTES_SRC = ROOT / "src" / "status" / "server.rs"
GATEWAY_ROUTES_SRC = ROOT / "src" / "gateway" / "server.rs"


def source_routes(path: Path) -> set[str]:
    text = path.read_text()
    return {"/" + m.replace('" / "', "/") for m in re.findall(r'warp::path!\("([^)]*)"\)', text)}


def check_probe_paths(name: str, objs: list[dict]) -> set[str]:
    """Every httpGet probe of a tickflow container names a route the status server has."""
    status = source_routes(STATUS_ROUTES_SRC)
    # The gateway serves crate::status::routes too, plus its own.
    gateway = status | source_routes(GATEWAY_ROUTES_SRC) if "crate::status::routes" in GATEWAY_ROUTES_SRC.read_text() else source_routes(GATEWAY_ROUTES_SRC)
    bad, used = [], set()
    for owner, spec in pod_specs(objs):
        for c in containers(spec):
            if not c["image"].split(":")[0].endswith("tickflow"):
                continue
            routes = gateway if "gateway" in c.get("command", []) else status
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                path = c.get(probe, {}).get("httpGet", {}).get("path")
                if path:
                    used.add(path)
                    if path not in routes:
                        bad.append(f"{owner['metadata']['name']} {probe} {path} not in {sorted(routes)}")
            ann = owner["spec"]["template"]["metadata"].get("annotations", {})
            if ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path", "/metrics") not in routes:
                bad.append(f"{owner['metadata']['name']}: scrape path {ann.get('prometheus.io/path')}")
    sts = tickflow_sts(objs)
    c = sts["spec"]["template"]["spec"]["containers"][0]
    want = {c.get("livenessProbe", {}).get("httpGet", {}).get("path"), c.get("readinessProbe", {}).get("httpGet", {}).get("path")}
    if want != {"/health", "/ready"}:
        bad.append(f"tickflow liveness/readiness are {want}, expected /health and /ready")
    check(f"{name}: every probe and scrape path exists on the status server ({', '.join(sorted(status))})", not bad, "; ".join(bad))
    return used


# ---------------------------------------------------------------- the entry script


def entry_env(objs: list[dict], ordinal: int, replicas: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the StatefulSet gives pod `ordinal` (fieldRefs resolved, Secrets left out)."""
    sts = tickflow_sts(objs)
    c = sts["spec"]["template"]["spec"]["containers"][0]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}
    for name, e in env_of(c).items():
        if "value" in e:
            env[name] = e["value"]
        elif "fieldRef" in e.get("valueFrom", {}):
            field = e["valueFrom"]["fieldRef"]["fieldPath"]
            env[name] = {"metadata.name": f"{sts['metadata']['name']}-{ordinal}", "metadata.namespace": sts["metadata"]["namespace"]}[field]
    env["REPLICAS"] = str(replicas)
    env.update(extra or {})
    return env


def configmap_toml(objs: list[dict]) -> str:
    sts = tickflow_sts(objs)
    vol = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    return named(objs, "ConfigMap", vol["configMap"]["name"])["data"]["cluster.toml"]


def render_for(objs: list[dict], tmp: Path, ordinal: int, replicas: int, extra: dict[str, str] | None = None):
    src = tmp / "configmap-cluster.toml"
    src.write_text(configmap_toml(objs))
    out = tmp / f"rendered-{replicas}-{ordinal}.toml"
    env = entry_env(objs, ordinal, replicas, {"TICKFLOW_CONFIG": str(src), "TICKFLOW_RENDERED_CONFIG": str(out), **(extra or {})})
    r = run(["sh", str(ENTRYPOINT), "--render-only"], env=env)
    return r, out


def check_process_lists(name: str, objs: list[dict], tmp: Path) -> None:
    sts = tickflow_sts(objs)
    svc = named(objs, "Service", sts["spec"]["serviceName"])
    ns = sts["metadata"]["namespace"]
    c = sts["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    probe_port = c["livenessProbe"]["httpGet"]["port"]
    probe_port = ports.get(probe_port, probe_port)
    headless = svc is not None and svc["spec"].get("clusterIP") == "None" and svc["spec"].get("publishNotReadyAddresses") is True
    check(f"{name}: Service {sts['spec']['serviceName']} is headless and publishes not-ready pods", headless)
    for replicas in (1, 2, 4):
        expected = [f"{sts['metadata']['name']}-{i}.{svc['metadata']['name']}.{ns}.svc.cluster.local:{ports['timely']}" for i in range(replicas)]
        problems = []
        for ordinal in range(replicas):
            r, out = render_for(objs, tmp, ordinal, replicas)
            if r.returncode != 0:
                problems.append(f"ordinal {ordinal}: exit {r.returncode}: {r.stderr.strip()}")
                continue
            cfg = tomllib.loads(out.read_text())
            got = cfg["cluster"]["processes"]
            if got != expected:
                problems.append(f"ordinal {ordinal}: {got} != {expected}")
            host, _, port = cfg["status"]["listen"].rpartition(":")
            # tickflow's process N serves status on status.listen's port + N.
            if int(port) + ordinal != probe_port:
                problems.append(f"ordinal {ordinal}: status on {int(port) + ordinal}, probes on {probe_port}")
            if "checkpoint" not in cfg or not cfg["checkpoint"].get("url"):
                problems.append(f"ordinal {ordinal}: no [checkpoint] url")
            if (out.stat().st_mode & 0o077) != 0:
                problems.append(f"rendered file mode {oct(out.stat().st_mode)} is readable by others")
        check(f"{name}: {replicas} replica(s) -> cluster.processes = the pods' DNS names, same in every pod, status on the probe port", not problems, "; ".join(problems))
    r, _ = render_for(objs, tmp, 2, 2)
    check(f"{name}: a pod with ordinal >= REPLICAS refuses to start", r.returncode != 0 and "REPLICAS" in r.stderr, r.stderr)


def check_secret_rendering(objs: list[dict], tmp: Path) -> None:
    extra = {
        "TICKFLOW_QUESTDB_USER": "admin",
        "TICKFLOW_QUESTDB_PASSWORD": 'p"a\\ss',
        "TICKFLOW_RULES_TOKEN": "rules-token-0123456789",
        "TICKFLOW_TELEGRAM_BOT_TOKEN": "123:abc",
        "TICKFLOW_CHECKPOINT_URL": "s3://bucket/prefix",
    }
    r, out = render_for(objs, tmp, 1, 2, extra)
    ok = r.returncode == 0
    detail = r.stderr
    if ok:
        cfg = tomllib.loads(out.read_text())
        got = (cfg["sinks"]["questdb"].get("basic-auth"), cfg["alerts"].get("token"), cfg["alerts"].get("telegram-bot-token"), cfg["checkpoint"]["url"])
        want = ('admin:p"a\\ss', "rules-token-0123456789", "123:abc", "s3://bucket/prefix")
        ok, detail = got == want, f"{got} != {want}"
    check("entrypoint: Secrets from the environment land in the rendered config (escaped), S3 url replaces the volume's", ok, detail)
    r, _ = render_for(objs, tmp, 0, 2, {"TICKFLOW_RULES_TOKEN": "bad\n"})
    check("entrypoint: a Secret with a newline is refused", r.returncode != 0 and "newline" in r.stderr, r.stderr)


def strip_section(text: str, section: str) -> str:
    out, skip = [], False
    for line in text.splitlines(keepends=True):
        h = line.strip()
        if h.startswith("[") and not h.startswith("[["):
            skip = h.split("]")[0].strip("[ ") == section
        if not skip:
            out.append(line)
    return "".join(out)


CHECKPOINT_NOTE: list[str] = []


def tickflow_check(path: Path) -> tuple[bool, str]:
    """`tickflow check`; a binary that predates the [checkpoint] section gets the file without it."""
    r = run([ARGS.tickflow, "check", "--config", str(path)])
    if r.returncode != 0 and "checkpoint" in r.stderr:
        stripped = path.with_suffix(".no-checkpoint.toml")
        stripped.write_text(strip_section(path.read_text(), "checkpoint"))
        r = run([ARGS.tickflow, "check", "--config", str(stripped)])
        if not CHECKPOINT_NOTE:
            CHECKPOINT_NOTE.append("this tickflow does not know [checkpoint] yet: checked with that section stripped")
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def check_tickflow_check(name: str, objs: list[dict], tmp: Path) -> None:
    r, out = render_for(objs, tmp, 1, 2, {"TICKFLOW_QUESTDB_USER": "u", "TICKFLOW_QUESTDB_PASSWORD": "p", "TICKFLOW_RULES_TOKEN": "rules-token-0123456789"})
    ok, detail = (False, r.stderr) if r.returncode else tickflow_check(out)
    check(f"{name}: the rendered cluster.toml passes `tickflow check`", ok, detail)


# ---------------------------------------------------------------- compose


def check_compose(tmp: Path) -> None:
    compose = ROOT / "docker" / "compose.yml"
    # The published status port needs a read token (SECURITY.md): compose refuses without one.
    os.environ.setdefault("TICKFLOW_STATUS_READ_TOKEN", "status-read-token-0123456789")
    r = run([ARGS.compose, "-f", str(compose), "config", "-q"])
    check("compose: `docker-compose config -q` accepts docker/compose.yml", r.returncode == 0, r.stderr.strip())
    r = run([ARGS.compose, "-f", str(compose), "config"])
    if r.returncode != 0:
        return
    cfg = yaml.safe_load(r.stdout)
    svcs = cfg["services"]
    bad = []
    for n, s in svcs.items():
        dep = s.get("depends_on", {})
        if isinstance(dep, list):
            bad.append(f"{n}: depends_on without conditions")
            continue
        for d, cond in dep.items():
            want = "service_completed_successfully" if d == "kafka-init" else "service_healthy"
            if cond.get("condition") != want:
                bad.append(f"{n} -> {d}: {cond.get('condition')} (want {want})")
            if want == "service_healthy" and "healthcheck" not in svcs[d]:
                bad.append(f"{n} -> {d}: {d} has no healthcheck")
    check("compose: every depends_on waits for health (kafka-init: for its completion)", not bad, "; ".join(bad))
    unpinned = [f"{n}: {s.get('image')}" for n, s in svcs.items() if not s.get("image") or ":" not in s["image"].rsplit("/", 1)[-1] or s["image"].endswith(":latest")]
    check("compose: every image is pinned", not unpinned, "; ".join(unpinned))
    source = [n for n, s in svcs.items() if "generate --to http://gateway" in " ".join(map(str, (s.get("command") or [])))]
    check("compose: a market source feeds the gateway (so `up` produces rows)", bool(source))
    cluster = [n for n, s in svcs.items() if s.get("entrypoint") == ["tickflow-entrypoint"]]
    mounts = all(any(str(v).endswith(":/var/lib/tickflow/checkpoints:rw") or "checkpoints:/var/lib/tickflow/checkpoints" in str(v) for v in svcs[n].get("volumes", [])) for n in cluster)
    check(f"compose: the cluster services ({', '.join(cluster)}) run the entry script and share the checkpoint volume", len(cluster) >= 2 and mounts and "checkpoints" in cfg.get("volumes", {}))
    # Prometheus scrapes every cluster process, with the read token docker/cluster.toml requires.
    prom = yaml.safe_load((ROOT / "docker" / "prometheus.yml").read_text())
    job = next((j for j in prom.get("scrape_configs", []) if j.get("job_name") == "tickflow"), {})
    targets = sorted(t for sc in job.get("static_configs", []) for t in sc.get("targets", []))
    cred = job.get("authorization", {}).get("credentials_file", "")
    psvc = svcs.get("prometheus", {})
    written = cred and cred in " ".join(map(str, psvc.get("command") or [])) and "TICKFLOW_STATUS_READ_TOKEN" in psvc.get("environment", {})
    on_tmpfs = any(cred.startswith(str(t).split(":")[0].rstrip("/") + "/") for t in (psvc.get("tmpfs") or []))
    required = tomllib.loads((ROOT / "docker" / "cluster.toml").read_text()).get("status", {}).get("require-read-token", False)
    check("compose: Prometheus scrapes every cluster process, with the status read token from a file on tmpfs",
          targets == sorted(f"{n}:9100" for n in cluster) and (not required or (written and on_tmpfs)),
          f"targets {targets}, credentials_file {cred!r}, written by the entrypoint: {bool(written)}, on tmpfs: {on_tmpfs}")
    replicas = {svcs[n]["environment"].get("REPLICAS") for n in cluster}
    check("compose: REPLICAS equals the number of cluster services", replicas == {str(len(cluster))}, str(replicas))
    binds = [str(v).split(":")[0] for sv in svcs.values() for v in sv.get("volumes", []) if str(v).startswith("/")]
    missing_binds = [b for b in binds if not Path(b).exists()]
    check(f"compose: every bind-mounted file exists ({len(binds)})", bool(binds) and not missing_binds, str(missing_binds))
    ignore = (ROOT / ".dockerignore").read_text().split()
    missing = [p for p in ("target/", "run/", ".git", "**/node_modules/") if p not in ignore]
    check("compose: .dockerignore keeps target/, run/, .git and node_modules out of the context", not missing, str(missing))
    # docker/cluster.toml as the compose services render it:
    env = {"PATH": os.environ["PATH"], "REPLICAS": "2", "POD_NAME": "tickflow-1", "TICKFLOW_PEER_HOST_TEMPLATE": "tickflow-{i}",
           "TICKFLOW_CONFIG": str(ROOT / "docker" / "cluster.toml"), "TICKFLOW_RENDERED_CONFIG": str(tmp / "compose-rendered.toml")}
    r = run(["sh", str(ENTRYPOINT), "--render-only"], env=env)
    if r.returncode == 0:
        cfg = tomllib.loads((tmp / "compose-rendered.toml").read_text())
        ok = cfg["cluster"]["processes"] == ["tickflow-0:2101", "tickflow-1:2101"]
        detail = str(cfg["cluster"]["processes"])
        if ok:
            ok, detail = tickflow_check(tmp / "compose-rendered.toml")
    else:
        ok, detail = False, r.stderr
    check("compose: docker/cluster.toml renders to [tickflow-0:2101, tickflow-1:2101] and passes `tickflow check`", ok, detail)


def check_grafana(objs: list[dict]) -> None:
    prov = named(objs, "ConfigMap", next(v["configMap"]["name"] for _, sp in pod_specs(objs) for v in sp.get("volumes", [])
                                         if v.get("configMap", {}).get("name", "").startswith("grafana-provisioning")))
    sources = yaml.safe_load(prov["data"]["datasources.yaml"])["datasources"]
    uids = {d["uid"]: d for d in sources}
    qdb = uids.get("questdb", {})
    grafana = next(o for o in by_kind(objs, "Deployment") if o["metadata"]["name"] == "grafana")
    env = env_of(grafana["spec"]["template"]["spec"]["containers"][0])
    # The url is ${QUESTDB_PG_ADDR}, expanded by Grafana from the Deployment's env.
    url = env.get("QUESTDB_PG_ADDR", {}).get("value", "") if qdb.get("url") == "${QUESTDB_PG_ADDR}" else qdb.get("url", "")
    ok = qdb.get("type") == "postgres" and url.endswith(":8812") and qdb.get("jsonData", {}).get("database") == "qdb"
    ok = ok and uids.get("prometheus", {}).get("type") == "prometheus"
    check("grafana: QuestDB (PostgreSQL wire, 8812) and Prometheus data sources are provisioned", ok, str(sources))
    bad = []
    dash_cm = [o for o in by_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("grafana-dashboards")]
    for cm in dash_cm:
        for key, text in cm["data"].items():
            d = json.loads(text)
            for panel in d.get("panels", []):
                for t in [panel] + panel.get("targets", []):
                    uid = t.get("datasource", {}).get("uid")
                    if uid and uid not in uids:
                        bad.append(f"{key} panel {panel.get('title')}: data source {uid}")
    check("grafana: the provisioned dashboards are JSON and use only provisioned data sources", bool(dash_cm) and not bad, "; ".join(bad))


# ---------------------------------------------------------------- a real 2-process cluster


def free_port(hosts: list[str]) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for h in hosts:
                with socket.socket() as t:
                    t.bind((h, port))
            with socket.socket() as t:
                t.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def check_real_cluster(objs: list[dict], tmp: Path) -> None:
    n, count = 2, 3000
    sts = tickflow_sts(objs)
    svc, ns, set_name = sts["spec"]["serviceName"], sts["metadata"]["namespace"], sts["metadata"]["name"]
    c = sts["spec"]["template"]["spec"]["containers"][0]
    # The container's command, with the image's path mapped to the file it is built from.
    cmd = [str(ENTRYPOINT) if a == IMAGE_ENTRYPOINT else a for a in c["command"] + c.get("args", [])]
    # "Pod IPs": one loopback address per pod; the pods' DNS names resolve to them.
    ips = [f"127.0.0.1{i}" for i in range(n)]
    names = [f"{set_name}-{i}.{svc}.{ns}.svc.cluster.local" for i in range(n)]
    timely, status = free_port(ips), free_port(ips)
    out = tmp / "cluster-out"
    cfg = tmp / "cluster-test.toml"
    cfg.write_text(
        f"""# the test cluster: the built-in market, a finite count, files
[cluster]
workers = 1
[status]
listen = "127.0.0.1:9100"
[source]
kind = "generator"
[source.generator]
symbols = 12
rate = 600
seed = 7
interval = "1s"
count = {count}
[windows]
timeframes = ["1m"]
[sinks.file]
dir = "{out}"
format = "csv"
"""
    )
    hosts = tmp / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + "".join(f"{ip} {nm}\n" for ip, nm in zip(ips, names)))
    # The least invasive way to make the Service's names resolve here: a private mount
    # namespace per process with its own /etc/hosts bound over the real one (which is never
    # touched). Without the privilege for that, the names are replaced by the addresses.
    probe = run(["unshare", "-m", "sh", "-c", f"mount --bind {hosts} /etc/hosts && getent hosts {names[0]}"])
    use_ns = probe.returncode == 0 and ips[0] in probe.stdout
    procs, logs = [], []
    for i in range(n):
        extra = {
            "TICKFLOW_CONFIG": str(cfg),
            "TICKFLOW_RENDERED_CONFIG": str(tmp / f"run-rendered-{i}.toml"),
            "TICKFLOW_TIMELY_PORT": str(timely),
            "TICKFLOW_STATUS_PORT": str(status),
            "TICKFLOW_STATUS_HOST": ips[i],
            "TICKFLOW_BIN": ARGS.tickflow,
            "RUST_LOG": "warn",
        }
        if not use_ns:
            extra["TICKFLOW_PEER_HOST_TEMPLATE"] = "127.0.0.1{i}"  # = ips[i]
        env = entry_env(objs, i, n, extra)
        argv = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts), *cmd] if use_ns else cmd
        log = open(tmp / f"process-{i}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp))
    seen_ready, seen_ids = set(), {}
    deadline = time.time() + 60
    while time.time() < deadline and any(p.poll() is None for p in procs):
        for i in range(n):
            if i not in seen_ready and procs[i].poll() is None:
                code, _ = get(f"http://{ips[i]}:{status}/ready")
                h, _ = get(f"http://{ips[i]}:{status}/health")
                if code == 200 and h == 200:
                    seen_ready.add(i)
                    code, body = get(f"http://{ips[i]}:{status}/status")
                    if code == 200:
                        seen_ids[i] = json.loads(body).get("process", {}).get("id")
        time.sleep(0.1)
    rcs = []
    for p in procs:
        try:
            rcs.append(p.wait(timeout=max(1, deadline - time.time())))
        except subprocess.TimeoutExpired:
            p.kill()
            rcs.append(p.wait())
    for log in logs:
        log.close()
    tails = " | ".join(f"process {i}: " + (tmp / f"process-{i}.log").read_text()[-600:].replace("\n", " / ") for i in range(n))
    mode = "pod DNS names via a private /etc/hosts" if use_ns else "loopback addresses in place of the names (no mount namespace here)"
    check(f"cluster: {n} processes started by the StatefulSet's command ({mode}) both exit 0", rcs == [0] * n, f"exit codes {rcs}; {tails}")
    check(f"cluster: every process answered /health and /ready with 200 on the probe port, /status with its own id",
          seen_ready == set(range(n)) and seen_ids == {i: i for i in range(n)}, f"ready {sorted(seen_ready)}, ids {seen_ids}")
    rendered = [tomllib.loads((tmp / f"run-rendered-{i}.toml").read_text())["cluster"]["processes"] for i in range(n)]
    check("cluster: both processes were given the same process list", rendered[0] == rendered[1] and len(rendered[0]) == n, str(rendered))
    # Committed result parts: bars-w<worker>-<epoch>.csv (README, Recovery).
    files = sorted(out.glob("bars-w*.csv"))
    rows = {f.name: max(0, len(f.read_text().splitlines()) - 1) for f in files}
    workers = sorted({int(re.match(r"bars-w(\d+)-\d+\.csv$", f.name).group(1)) for f in files if re.match(r"bars-w(\d+)-\d+\.csv$", f.name)})
    check(f"cluster: result files of every worker of both processes, {count} bars in all (each once)",
          workers == list(range(n)) and sum(rows.values()) == count, str(rows))


# ---------------------------------------------------------------- main


def main() -> int:
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubectl", required=True)
    ap.add_argument("--compose", required=True)
    ap.add_argument("--tickflow", required=True)
    ap.add_argument("--skip-cluster", action="store_true")
    ARGS = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tickflow-deploy-"))
    try:
        rendered: dict[str, list[dict]] = {}
        for d in kustomizations():
            name = str(d.relative_to(K8S))
            try:
                rendered[name] = render(d)
                check(f"{name}: `kubectl kustomize` renders it", True)
            except Exception as e:
                check(f"{name}: `kubectl kustomize` renders it", False, str(e))
        probe_paths: set[str] = set()
        for name, objs in rendered.items():
            for fn in (check_schema, check_references, check_no_secrets_in_configmaps, check_images_pinned, check_replicas_env):
                try:
                    fn(name, objs)
                except Exception as e:
                    check(f"{name}: {fn.__name__}", False, f"{type(e).__name__}: {e}")
            try:
                probe_paths |= check_probe_paths(name, objs)
            except Exception as e:
                check(f"{name}: check_probe_paths", False, repr(e))
            sub = tmp / name.replace("/", "-")
            sub.mkdir()
            for fn in (check_process_lists, check_tickflow_check):
                try:
                    fn(name, objs, sub)
                except Exception as e:
                    check(f"{name}: {fn.__name__}", False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        base = rendered.get("base")
        for fn in ([check_secret_rendering, lambda o, _t: check_grafana(o)] if base else []) + [lambda _o, t: check_compose(t)] + ([] if ARGS.skip_cluster or not base else [check_real_cluster]):
            try:
                fn(base, tmp)
            except Exception as e:
                check(getattr(fn, "__name__", "check"), False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        for note in CHECKPOINT_NOTE:
            print(f"note: {note}")
    finally:
        if os.environ.get("KEEP_TMP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(ok for _, ok, _ in RESULTS)
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not RESULTS else 0


if __name__ == "__main__":
    sys.exit(main())
