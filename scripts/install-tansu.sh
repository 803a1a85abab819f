#!/usr/bin/env bash
# Installs Tansu 0.6.0, the Kafka-protocol broker tickflow's Kafka tests and local runs use,
# unless a `tansu` is already on PATH. Builds from source with cargo (~20 minutes on 2 cores).
# Storage engines compiled in: memory:// (dynostore) and sqlite:// (libsql).
# Note: Debian's kcat does not work with Tansu; tickflow's tests produce with rdkafka.
set -euo pipefail

VERSION=0.6.0
FEATURES=dynostore,libsql

if command -v tansu >/dev/null 2>&1; then
  echo "install-tansu.sh: tansu already installed: $(command -v tansu) ($(tansu --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
command -v cargo >/dev/null 2>&1 || { echo "install-tansu.sh: cargo is required (https://rustup.rs)" >&2; exit 2; }

echo "install-tansu.sh: running: cargo install --locked tansu --version $VERSION --features $FEATURES"
echo "install-tansu.sh: this compiles Tansu from source and takes about 20 minutes"
cargo install --locked tansu --version "$VERSION" --features "$FEATURES"
echo "install-tansu.sh: installed $(command -v tansu || echo "tansu into ~/.cargo/bin (add it to PATH)")"
