# Sourced by demo.sh and test.sh: the project's Python, in a virtualenv, so pip never touches a system Python
# (Debian 12+/Ubuntu 23.04+ refuse that: PEP 668). An active virtualenv (VIRTUAL_ENV) is used as it is;
# otherwise ./.venv (or BENCH_VENV) is created once with the first python3 on the PATH and reused.

bench_python() {
    if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
        echo "$VIRTUAL_ENV/bin/python"
        return
    fi
    local venv="${BENCH_VENV:-.venv}" base
    if [ ! -x "$venv/bin/python" ]; then
        base="$(command -v python3 || command -v python)" || { echo "error: no python3 on the PATH" >&2; return 1; }
        if ! "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "error: lstm-bench needs Python >= 3.11; $base is $("$base" -V 2>&1)" >&2
            return 1
        fi
        echo "creating a virtualenv in $venv (once) with $base" >&2
        if ! "$base" -m venv "$venv" >/dev/null; then
            echo "error: $base cannot create a virtualenv; on Debian/Ubuntu: sudo apt install python3-venv" >&2
            return 1
        fi
    fi
    echo "$venv/bin/python"
}

# bench_install PYTHON [EXTRA]: pip install -e ".[EXTRA]" into PYTHON's environment, quietly (log in
# <env>/lstm-bench-install.log); skipped while pyproject.toml is unchanged since the last install.
bench_install() {
    local py="$1" extra="${2:-}" prefix stamp log
    prefix="$("$py" -c 'import sys; print(sys.prefix)')"
    stamp="$prefix/.lstm-bench-installed$extra" log="$prefix/lstm-bench-install.log"
    if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && "$py" -c 'import importlib.metadata as m; m.version("lstm-bench")' 2>/dev/null; then
        return
    fi
    echo "installing lstm-bench$extra into $prefix (a few minutes the first time; log: $log)" >&2
    if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$py" -m pip install -q -e ".$extra" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "error: pip install failed; full log: $log" >&2
        return 1
    fi
    touch "$stamp"
}
