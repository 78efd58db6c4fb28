# Shared by bin/quickstart and bin/test: find Python 3.12+, make .venv, install the locked dependencies.
# Sourced, not run.

A4C_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$A4C_ROOT/.venv"

find_python() {
  local candidates=("${PYTHON:-}" python3.13 python3.12 python3)
  local dir
  for dir in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin; do candidates+=("$dir/python3"); done
  local py
  for py in "${candidates[@]}"; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || [ -x "$py" ] || continue
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  echo "A4C Onboarding needs Python 3.12 or newer (Django 6). Set PYTHON=/path/to/python3.12 and retry." >&2
  return 1
}

ensure_venv() {
  local stamp="$VENV/.a4c-installed"
  local want
  want="$(cat "$A4C_ROOT/requirements.lock" "$A4C_ROOT/pyproject.toml" | cksum)"
  if [ ! -x "$VENV/bin/python" ]; then
    local py
    py="$(find_python)"
    echo "==> Creating .venv with $("$py" --version)"
    "$py" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> Installing dependencies (requirements.lock)"
    local log="$VENV/pip-install.log"
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
           "$VENV/bin/python" -m pip install --disable-pip-version-check \
             -c "$A4C_ROOT/requirements.lock" -e "$A4C_ROOT[dev]"; } > "$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "Installing dependencies failed; the full log is in $log" >&2
      return 1
    fi
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}
