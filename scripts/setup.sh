#!/usr/bin/env bash
# Set-up for both Python environments and the web widget's npm packages (idempotent, cached
# on the lock files).
#
# Why two environments: Rasa 3.6 needs Python 3.10 with pydantic 1, the action server's
# langchain needs pydantic 2 (see docs/architecture.md). Each env lives in
# $CSBOT_HOME/envs/<name> and carries a stamp with the sha256 of its lock file and Python
# version; a changed lock (or a new machine) rebuilds it, an unchanged one is reused.
# Prints `export` lines for the caller to eval (progress goes to stderr).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CSBOT_HOME="${CSBOT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/csbot}"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# find_python VERSION ENVVAR: an interpreter of exactly that minor version, or nothing.
find_python() {
  local want="$1" override="${!2:-}" candidates=() c
  [ -n "$override" ] && candidates+=("$override")
  candidates+=("python$want")
  if command -v pyenv >/dev/null 2>&1; then
    for c in "$(pyenv root)"/versions/"$want".*/bin/python"$want"; do candidates+=("$c"); done
  fi
  candidates+=("/usr/bin/python$want" "/usr/local/bin/python$want")
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && \
       [ "$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ] && \
       "$c" -c 'import venv' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

# build_env NAME PYTHON: make $CSBOT_HOME/envs/NAME match requirements/NAME.lock.
build_env() {
  local name="$1" python="$2" lock="$ROOT/requirements/$1.lock" dir="$CSBOT_HOME/envs/$1"
  local nodeps="$ROOT/requirements/$1-nodeps.txt"
  local want; want="$( (cat "$lock"; [ -f "$nodeps" ] && cat "$nodeps"; "$python" -VV) | sha256sum | cut -c1-16)"
  if [ -f "$dir/.csbot-stamp" ] && [ "$(cat "$dir/.csbot-stamp")" = "$want" ]; then
    log "$name env up to date ($dir)"; return 0
  fi
  log "building $name env with $("$python" -V) in $dir (first time: several minutes, GBs of wheels)"
  rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --upgrade "pip==24.2" >&2
  # The lock is a complete, resolved set: --no-deps installs exactly it, no resolver surprises.
  # (grep drops pip's notes about this machine's optional local mirror folders.)
  "$dir/bin/python" -m pip install --no-deps -r "$lock" 2>&1 | { grep -v "is ignored: it is neither" || true; } >&2
  "$dir/bin/python" -m pip check >&2 || die "$name env is inconsistent after install (pip check above)"
  if [ -f "$nodeps" ]; then  # after pip check: these deliberately lack their dependencies
    "$dir/bin/python" -m pip install --no-deps -r "$nodeps" 2>&1 | { grep -v "is ignored: it is neither" || true; } >&2
  fi
  echo "$want" > "$dir/.csbot-stamp"
  log "$name env ready"
}

# build_web: bot/web/node_modules (the web widget's rasa-webchat, the browser tests'
# playwright-core) from the committed package-lock.json; reused while the lock is unchanged.
build_web() {
  local dir="$ROOT/bot/web" want major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  { command -v npm >/dev/null 2>&1 && [ "$major" -ge 20 ]; } || die "Node.js 20 or newer with npm is needed (the web widget and its browser tests).
  Install it (https://nodejs.org, or NodeSource packages; Debian 12's nodejs is 18), then run this again."
  want="$( (cat "$dir/package-lock.json"; node -v) | sha256sum | cut -c1-16)"
  if [ -f "$dir/node_modules/.csbot-stamp" ] && [ "$(cat "$dir/node_modules/.csbot-stamp")" = "$want" ]; then
    log "web widget packages up to date ($dir/node_modules)"; return 0
  fi
  log "installing the web widget's npm packages in $dir (npm ci: about a minute, 100 MB)"
  (cd "$dir" && npm ci --no-audit --no-fund >&2) || die "npm ci failed in $dir (output above)"
  echo "$want" > "$dir/node_modules/.csbot-stamp"
  log "web widget packages ready"
}

PY310="$(find_python 3.10 CSBOT_PYTHON310)" || die "no Python 3.10 found (Rasa 3.6 runs on Python 3.8-3.10 only).
  Install one, then run this again:  pyenv install 3.10.13   or   apt-get install python3.10 python3.10-venv
  or point CSBOT_PYTHON310 at an existing python3.10."
PY311="$(find_python 3.11 CSBOT_PYTHON311)" || die "no Python 3.11 found (the action server's langchain stack needs it).
  Install one, then run this again:  pyenv install 3.11.7   or   apt-get install python3.11 python3.11-venv
  or point CSBOT_PYTHON311 at an existing python3.11."

build_env rasa "$PY310"
build_env actions "$PY311"
build_web

echo "export CSBOT_HOME='$CSBOT_HOME'"
echo "export CSBOT_RASA_PYTHON='$CSBOT_HOME/envs/rasa/bin/python'"
echo "export CSBOT_ACTIONS_PYTHON='$CSBOT_HOME/envs/actions/bin/python'"
