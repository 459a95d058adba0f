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
