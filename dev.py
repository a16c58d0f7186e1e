#!/usr/bin/env python3
"""The two commands of this project, runnable with nothing but Python 3.11.

    python3 dev.py up      # embedded Postgres, migrations, daphne, cdc_listen, demo data
    python3 dev.py test    # lint, format and type checks, then the test suite
                           # (extra arguments go to pytest: `python3 dev.py test -m unit`)

Both first make sure `.venv` matches `uv.lock` (uv itself is installed into `.uv/`
from PyPI on first use), then run inside that environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
UV_VERSION = "0.13.9"
UV_HOME = ROOT / ".uv"
UV = UV_HOME / "bin" / "uv"
PYTHON = ROOT / ".venv" / "bin" / "python"
# What `test` runs before pytest: each must pass, or the tests do not start.
CHECKS = (
    ["ruff", "check", "."],
    ["ruff", "format", "--check", "."],
    ["mypy", "."],
)


def ensure_uv() -> None:
    if UV.exists():
        return
    print(f"dev.py: installing uv {UV_VERSION} into {UV_HOME}", flush=True)
    venv.create(UV_HOME, with_pip=True)
    pip = UV_HOME / "bin" / "pip"
    subprocess.run([pip, "install", "--quiet", f"uv=={UV_VERSION}"], check=True)


def sync() -> None:
    ensure_uv()
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv")}
    subprocess.run(
        [UV, "sync", "--frozen", "--all-groups", "--quiet", "--python", sys.executable],
        check=True,
        cwd=ROOT,
        env=env,
    )


def check() -> int:
    """Lint, formatting and types; the exit status of the first that fails, else 0."""
    for command in CHECKS:
        print(f"dev.py: {' '.join(command)}", flush=True)
        done = subprocess.run([PYTHON, "-m", *command], cwd=ROOT, check=False)
        if done.returncode:
            return done.returncode
    return 0


def main(argv: list[str]) -> int:
    commands = {
        "up": [str(PYTHON), "manage.py", "up", *argv[1:]],
        "test": [str(PYTHON), "-m", "pytest", *argv[1:]],
    }
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    sync()
    if argv[0] == "test" and (failed := check()):
        return failed
    os.chdir(ROOT)
    os.execv(commands[argv[0]][0], commands[argv[0]])  # replaces this process: never returns
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
