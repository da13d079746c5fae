#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser test of /docs
# (test/routes/docs.browser.test.ts). Installs it with apt when missing, which needs root and
# a working apt; exits non-zero otherwise, and the test then skips with the reason.
set -euo pipefail
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
  echo "chromium present: $CHROMIUM"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is missing at $CHROMIUM and installing it needs root (apt-get install chromium)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing at $CHROMIUM and there is no apt-get to install it" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt run (a second CI job) holds the dpkg lock for a while: wait for it rather than fail.
APT=(apt-get -o DPkg::Lock::Timeout=300 -q)
# A fresh machine may have no package lists yet; refresh them only when the package is unknown.
if ! apt-cache show chromium >/dev/null 2>&1; then
  "${APT[@]}" update
fi
"${APT[@]}" install -y --no-install-recommends chromium
if [ ! -x "$CHROMIUM" ]; then
  echo "apt-get installed chromium but $CHROMIUM is not there" >&2
  exit 1
fi
echo "chromium installed: $CHROMIUM"
