#!/bin/sh
# Install everything Luren needs on a Debian 12 machine, then run the simulated office or the
# whole test suite:
#
#   sh tools/setup.sh office    # Kamailio + phones 1001, 1002 + a DECT base 1003 + a front panel
#   sh tools/setup.sh test      # ruff, then every test (unit and end-to-end)
#
# System packages are installed with apt-get only when missing (needs root or sudo); Python
# packages go into .venv at the top of the checkout, pinned in pyproject.toml. Extra arguments
# are passed on (to `luren office` or to pytest).
set -eu

cd "$(dirname "$0")/.."
mode="${1:-}"
[ $# -gt 0 ] && shift

case "$mode" in
  office|test) ;;
  *) echo "usage: sh tools/setup.sh office|test [arguments]" >&2; exit 2 ;;
esac

# Debian packages, and why:
#   kamailio kamailio-utils-modules kamailio-presence-modules: the PBX of the office and tests
#   sip-tester: SIPp, load and scripted peers in tests;  baresip-core: the far-end phone in tests
#   espeak-ng sox: the voicemail prompts (written below), spoken test audio, conversions;  alsa-utils libasound2-dev gcc: pyalsaaudio
#   python3-venv python3-dev: the virtual environment and C headers for pyalsaaudio
#   tmux: drives the terminal front panel in its tests
#   iproute2 util-linux: private network namespaces (ip, unshare) for the SIP torture test
#   libspeexdsp-dev swig: to build speexdsp (hands-free echo cancellation)
#   slapd: a real LDAP server for the LDAP company directory tests (started per test, loopback)
#   nginx wrk: the provisioning tree served as static files, and its load generator (benchmark)
#   postgresql-15: the provisioning inventory on PostgreSQL (tests start their own cluster)
PACKAGES="kamailio kamailio-utils-modules kamailio-presence-modules sip-tester baresip-core
espeak-ng sox alsa-utils libasound2-dev gcc tmux iproute2 util-linux libspeexdsp-dev swig
slapd nginx wrk postgresql-15"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "setup: need root (or sudo) to run: $*" >&2; exit 1
  fi
}

missing=""
for pkg in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $pkg"
done

# Python 3.8-3.12 (the pjsua2 wheel's range); the machine's python3 first.
PYTHON="${PYTHON:-python3}"
py_ok() {
  "$1" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null
}
if ! py_ok "$PYTHON"; then
  if py_ok python3.11; then PYTHON=python3.11
  else missing="$missing python3"; PYTHON=/usr/bin/python3
  fi
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  missing="$missing python3-venv"
fi
if ! "$PYTHON" -c 'import os, sysconfig; \
    assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
    2>/dev/null; then
  missing="$missing python3-dev"
fi

if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $missing >/dev/null
fi

# The virtual environment, reinstalled only when pyproject.toml changes.
stamp=".venv/.luren-installed"
want="$(cat pyproject.toml | cksum)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi

# The voicemail and menu prompts, spoken by espeak-ng into prompts/<language>/ (a recorded
# WAV of the same name put there is kept; existing files are not rewritten).
.venv/bin/python -m tools.prompts prompts

case "$mode" in
  office)
    exec .venv/bin/luren office "$@"
    ;;
  test)
    .venv/bin/ruff check .
    # two workers, a test file each at a time (most of an end-to-end test is waiting on
    # real-time audio and timers); the slowest tests listed at the end
    exec .venv/bin/pytest -n 2 --dist loadfile --durations=15 "$@"
    ;;
esac
