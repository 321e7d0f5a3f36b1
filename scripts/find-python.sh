#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain what to install and exit 1.
# Order: $BW_PYTHON, python3.13, python3.12, python3, then pyenv-installed versions.
set -u
min_minor=12
ok() {  # $1 = candidate command or path; succeeds if it runs and is >= 3.12
    "$1" -c "import sys; sys.exit(0 if sys.version_info >= (3, $min_minor) else 1)" >/dev/null 2>&1
}
candidates=()
[ -n "${BW_PYTHON:-}" ] && candidates+=("$BW_PYTHON")
for v in 3.14 3.13 3.12; do candidates+=("python$v"); done
candidates+=(python3 python)
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
if [ -d "$pyenv_root/versions" ]; then
    # newest first
    while IFS= read -r d; do candidates+=("$d/bin/python3"); done < <(
        ls -d "$pyenv_root"/versions/3.* 2>/dev/null | sort -t. -k2,2nr -k3,3nr)
fi
for c in /usr/local/bin/python3.13 /usr/local/bin/python3.12 /usr/bin/python3.13 /usr/bin/python3.12; do
    candidates+=("$c")
done
for c in "${candidates[@]}"; do
    if ok "$c"; then
        command -v "$c" 2>/dev/null || echo "$c"
        exit 0
    fi
done
{
    echo "error: bioworkbench needs Python >= 3.$min_minor (PyMC 6 and ArviZ 1.x require it)."
    echo "  Looked for: \$BW_PYTHON, python3.14/3.13/3.12, python3, pyenv versions under $pyenv_root/versions."
    echo "  Install one (e.g. 'pyenv install 3.12', or your OS package python3.12) or set BW_PYTHON=/path/to/python3.12."
} >&2
exit 1
