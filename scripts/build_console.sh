#!/usr/bin/env bash
# Builds the web console into console/dist/ (docs/console.md), for `./dev run`, `./dev test` and
# `./dev deploy`: `npm ci` from the committed lockfile when it changed, `vite build` when any of
# the console's files changed. Re-running with nothing changed takes a moment. Needs only the npm
# registry; never asks anything (CI has no stdin).
set -euo pipefail
cd "$(dirname "$0")/../console"

command -v npm >/dev/null || { echo "build_console: npm is missing (scripts/bootstrap.sh installs nodejs)" >&2; exit 1; }

# Two ./dev commands started at once in one checkout build once, one after the other.
exec 9>".build.lock"
flock 9

packages="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -f "$packages" ]; then
  echo "build_console: installing the console's npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch "$packages"
fi

inputs="$(find index.html vite.config.js package-lock.json src public -type f -print0 | sort -z \
  | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if [ ! -f "dist/.built-$inputs" ]; then
  echo "build_console: building the console (vite build)" >&2
  npx --no-install vite build --logLevel warn >&2
  touch "dist/.built-$inputs"
fi
