"""scripts/install_torch.sh in a throwaway venv against local package indexes with stand-in torch wheels."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "install_torch.sh"
CUDA_REQUIREMENT = "nvidia-cublas-cu12==12.8.4.1; platform_system == 'Linux'"


def stand_in_wheel(index: Path, version: str, requires: list[str]) -> None:
    """A tiny wheel named torch, with the metadata pip reads, in a PEP 503 index folder."""
    name = f"torch-{version}-py3-none-any.whl"
    info = "torch-2.13.0.dist-info"
    folder = index / "torch"
    folder.mkdir(parents=True)
    metadata = "\n".join(["Metadata-Version: 2.1", "Name: torch", f"Version: {version}",
                          *(f"Requires-Dist: {r}" for r in requires)]) + "\n"
    with zipfile.ZipFile(folder / name, "w") as wheel:
        wheel.writestr("torch/__init__.py", f"__version__ = {version!r}\n")
        wheel.writestr(f"{info}/METADATA", metadata)
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    (folder / "index.html").write_text(f'<a href="{name}">{name}</a>\n')


def install(tmp_path: Path, default_requires: list[str]) -> tuple[str, str]:
    """Run the script with pip's configured index holding a torch that needs `default_requires`; (log, version)."""
    default, cpu = tmp_path / "default", tmp_path / "cpu"
    stand_in_wheel(default, "2.13.0", default_requires)
    stand_in_wheel(cpu, "2.13.0+cpu", [])
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)  # pip from ensurepip
    python = tmp_path / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    # Only the two local indexes exist for pip: no config file, no find-links.
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=default.as_uri(), SHOPBOT_TORCH_INDEX=cpu.as_uri())
    result = subprocess.run(["bash", str(SCRIPT), str(python)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    version = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('torch'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    again = subprocess.run(["bash", str(SCRIPT), str(python)], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and again.stdout == ""  # installed already: pip is not even asked
    return result.stdout, version


def test_a_cuda_torch_on_the_default_index_is_replaced_by_the_cpu_index(tmp_path):
    log, version = install(tmp_path, [CUDA_REQUIREMENT])
    assert version == "2.13.0+cpu" and f"CPU build, from {(tmp_path / 'cpu').as_uri()}" in log


def test_a_cpu_torch_on_the_default_index_is_taken_from_there(tmp_path):
    log, version = install(tmp_path, [])
    assert version == "2.13.0" and "from pip's configured index (a CPU build)" in log
