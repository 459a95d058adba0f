# Shared by scripts/start and scripts/test.
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -m venv .venv
  fi
}

# pip, quiet unless it fails (then its output, less this machine's index-location noise).
quiet_pip() {
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# install_project [extra]: the project (editable) and its dependencies.
install_project() {
  local target="."
  [ -n "${1:-}" ] && target=".[$1]"
  step "pip install -e '$target'"
  quiet_pip --upgrade pip
  quiet_pip -e "$target"
}

# npm_install: the pinned node packages of package-lock.json (solc-js, the anvil binary the chain
# tests start). `npm ci` installs exactly the lock file; install scripts are not needed (anvil's
# binary comes in its platform package) and are not run.
npm_install() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is needed for the chain tests (anvil, solc-js): install Node.js 18 or later" >&2
    return 1
  fi
  step "npm ci"
  local log
  log=$(mktemp)
  if ! npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}
