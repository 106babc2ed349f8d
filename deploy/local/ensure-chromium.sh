#!/usr/bin/env bash
# The browser the dashboard's end-to-end test drives: Debian's `chromium` package, driven
# by Playwright with its executable path set. Playwright never downloads a browser here
# (never run `playwright install`).
#
# Uses $LIAISON_CHROMIUM when set (it must then be an executable Chromium), else
# `chromium` on PATH. When there is none, installs Debian's package with apt-get (as root,
# or through sudo); when that cannot be done, fails with one line saying what to install.
#
#   deploy/local/ensure-chromium.sh            make sure Chromium is here (install if not)
#   deploy/local/ensure-chromium.sh --check    only say whether it is here (exit 0 or 1)
set -euo pipefail

install_hint="install Debian's chromium package (sudo apt-get install chromium) or set LIAISON_CHROMIUM to a Chromium executable"

fail() {
  echo "error: $1" >&2
  exit 1
}

# The Chromium to use, or nothing.
find_chromium() {
  if [ -n "${LIAISON_CHROMIUM:-}" ]; then
    echo "$LIAISON_CHROMIUM"
  else
    command -v chromium || true
  fi
}

# Whether $1 is an executable that starts and prints its version.
works() {
  [ -n "$1" ] && [ -x "$1" ] && [ -n "$("$1" --version 2>/dev/null)" ]
}

browser=$(find_chromium)
if works "$browser"; then
  echo "Chromium for the browser test: $("$browser" --version 2>/dev/null) ($browser)"
  exit 0
fi
if [ -n "${LIAISON_CHROMIUM:-}" ]; then
  # The user named a browser: never install another one behind their back.
  fail "LIAISON_CHROMIUM=$LIAISON_CHROMIUM is not an executable Chromium (the dashboard's browser test needs one); $install_hint"
fi
if [ "${1:-}" = "--check" ]; then
  fail "the dashboard's browser test needs Chromium, and there is none; $install_hint"
fi

# Install Debian's package: as root, or through sudo (asking for a password only at a
# terminal; never hanging in CI).
if ! command -v apt-get >/dev/null 2>&1; then
  fail "the dashboard's browser test needs Chromium, and this machine has no apt-get to install it with; install Chromium and set LIAISON_CHROMIUM to its executable"
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
elif command -v sudo >/dev/null 2>&1 && [ -t 0 ]; then
  as_root=(sudo)
else
  fail "the dashboard's browser test needs Chromium, and installing it needs root; $install_hint"
fi

echo "Installing Debian's chromium package for the dashboard's browser test (apt-get install chromium)"
apt_install() {
  ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
}
# A fresh machine may have no package lists yet: update them once, then try again.
if ! apt_install; then
  ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q || true
  apt_install || fail "apt-get could not install chromium; $install_hint"
fi

browser=$(find_chromium)
works "$browser" || fail "chromium was installed but does not start; $install_hint"
echo "Chromium for the browser test: $("$browser" --version 2>/dev/null) ($browser)"
