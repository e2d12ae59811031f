# Sourced by scripts/serve, scripts/test and scripts/bench: a .venv with the project installed.
# $1: the extras to install ("" or "dev").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
find_python() {
  for candidate in "${YUFU_PYTHON:-}" python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)" 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Yufu needs Python 3.11 or newer (3.11 or 3.12 for the embedded PostgreSQL wheel)." >&2
  return 1
}
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  "$(find_python)" -m venv .venv
fi
stamp=".venv/.yufu-installed-${extras:-base}"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
  if [ -n "$extras" ]; then spec=".[${extras}]"; else spec="."; fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 \
    | grep -v "^WARNING: Location" || true
  echo "$want" > "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
