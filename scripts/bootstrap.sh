#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, once: Debian packages, a venv and the
# pip dependencies. Re-running is cheap: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# One list for development machines, CI and the job image (job_containers/Dockerfile), and one
# for development machines and CI only (test tools).
mapfile -t APT_PACKAGES < <(cat job_containers/apt-packages.txt scripts/dev-apt-packages.txt | grep -v '^#' | grep -v '^$')

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# npm builds the web console (scripts/build_console.sh). Debian's nodejs comes without it (it is
# Debian's npm package); a nodejs from elsewhere (NodeSource's) carries its own and conflicts with
# Debian's, so npm is installed only when no npm is there.
if ! command -v npm >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install: npm" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "bootstrap: installing Debian packages: npm" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >&2
fi

# Debian's interpreter, with its site-packages visible: the QGIS job containers use python3-qgis.
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=".venv/.deps-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing Python dependencies" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check 'pip>=24,<26.3' >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' >&2
  rm -f .venv/.deps-*
  touch "$stamp"
fi
