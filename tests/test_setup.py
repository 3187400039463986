"""scripts/setup.sh asks pip only for what .venv lacks: the bot's start after the test setup installs nothing."""

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO


def setup_folder(tmp_path: Path) -> Path:
    """The repo's setup files in a throwaway folder, with a .venv whose python only writes down how it was called, and
    a `chromium` on PATH (the test setup would otherwise install one with apt)."""
    for name in ("pyproject.toml", "scripts/setup.sh", "scripts/install_torch.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    for name in (".venv/bin/python", "bin/chromium"):
        tool = tmp_path / name
        tool.parent.mkdir(parents=True, exist_ok=True)
        tool.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\n')
        tool.chmod(0o755)
    return tmp_path


def pip_installs(folder: Path, *extras: str) -> list[str]:
    """Run setup.sh with `extras`; what it asked pip to install (the package and its extras)."""
    calls = folder / ".venv" / "bin" / "calls"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{folder / 'bin'}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", "scripts/setup.sh", *extras], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line.split(" install -e ")[1] for line in lines if " install -e " in line]


def test_the_bots_start_after_the_test_setup_installs_nothing_and_a_new_extra_keeps_the_old(tmp_path):
    folder = setup_folder(tmp_path)
    assert pip_installs(folder, "test") == [".[test]"]
    assert pip_installs(folder) == []  # scripts/run.sh after scripts/test.sh: the test extras include the bot's
    assert pip_installs(folder, "test") == []
    (folder / "pyproject.toml").write_text((folder / "pyproject.toml").read_text() + "\n# a changed dependency\n")
    assert pip_installs(folder) == [".[test]"]  # reinstalled with the extras it had, so the tests still run
    assert pip_installs(folder, "test") == []


# A system Python without its venv package (Debian and Ubuntu ship it apart: python3.11-venv) makes .venv/bin/python,
# then fails on ensurepip and says "install python3.11-venv, then recreate your virtual environment".
SYSTEM_PYTHON = r'''#!/bin/sh
case "$*" in
    --version) echo "Python 3.11.2" ;;
    -c*) exit 0 ;;
    "-m venv"*)
        venv="$(dirname "$0")/../.venv"
        rm -rf "$venv"/*
        mkdir -p "$venv/bin"
        if [ -f "$(dirname "$0")/venv-package-installed" ]; then
            printf '#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\n' > "$venv/bin/python"
            chmod 755 "$venv/bin/python"
        else
            printf '#!/bin/sh\ncase "$*" in *pip*) echo "No module named pip" >&2; exit 1 ;; esac\n' \
                > "$venv/bin/python"
            chmod 755 "$venv/bin/python"
            echo "The virtual environment was not created successfully because ensurepip is not available." >&2
            exit 1
        fi ;;
esac
'''


def test_setup_after_a_venv_half_made_without_pythons_venv_package_makes_it_again_and_installs(tmp_path):
    folder = setup_folder(tmp_path)
    shutil.rmtree(folder / ".venv")
    system_python = folder / "bin" / "python3.11"
    system_python.write_text(SYSTEM_PYTHON)
    system_python.chmod(0o755)
    env = {**os.environ, "PATH": f"{folder / 'bin'}:{os.environ['PATH']}", "PYTHON": str(system_python)}
    first = subprocess.run(["bash", "scripts/setup.sh"], cwd=folder, env=env, capture_output=True, text=True,
                           timeout=60)
    assert first.returncode != 0 and "ensurepip is not available" in first.stderr
    (folder / "bin" / "venv-package-installed").touch()  # the owner did what it said: apt install python3.11-venv
    assert pip_installs(folder) == ["."]  # and ran setup again: a working .venv, shopbot installed into it
