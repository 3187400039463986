"""The Dockerfile's steps run for real in a clean directory (no Docker daemon here), and the systemd unit verified."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from testkit.fakes.bot_api import FakeBotApi
from testkit import free_port
from testkit.telegram_helpers import TOKEN
from tests.conftest import REPO


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [tuple(line.split(None, 1)) for line in lines]


@pytest.mark.real_model
def test_dockerfile_install_prepare_and_start_steps_work_in_a_clean_directory(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    steps = instructions()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "TELEGRAM_BOT_TOKEN")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # `python`: a 3.11 like the image's
    runs = [args for kind, args in steps if kind == "RUN"]
    assert runs[0].startswith("useradd")  # the image's user: root's business, not run here
    for kind, args in steps:
        if kind == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
        elif kind == "COPY":
            *sources, target = args.split()
            for source in map(REPO.joinpath, sources):
                dest = app / target / source.name if target.endswith("/") else app / target
                if source.is_dir():
                    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(source, dest)
        elif kind == "RUN" and args is not runs[0]:
            done = subprocess.run(["bash", "-c", args.replace("/app", str(app))], cwd=app, env=env,
                                  capture_output=True, text=True, timeout=1800)
            assert done.returncode == 0, f"RUN {args}\n{done.stdout}\n{done.stderr}"
    assert list((app / "data" / "models").glob("*/config.json")), "the model was not prepared at build time"

    cmd = [part.replace("/app", str(app)) for part in json.loads(dict(steps)["CMD"])]  # the exec (JSON) form
    port = free_port()
    with FakeBotApi(TOKEN) as fake:
        config = app / "config.toml"
        text = config.read_text(encoding="utf-8").replace("https://api.telegram.org", fake.url)
        config.write_text(text.replace('listen = "0.0.0.0:9100"', f'listen = "127.0.0.1:{port}"'), encoding="utf-8")
        started = time.monotonic()
        bot = subprocess.Popen(cmd, cwd=app, env={**env, "TELEGRAM_BOT_TOKEN": TOKEN}, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            while True:  # the image's HEALTHCHECK asks the same URL
                assert bot.poll() is None and time.monotonic() - started < 120, bot.stdout.read() if bot.poll() else ""
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as health:
                        if health.status == 200:
                            break
                except OSError:
                    time.sleep(0.5)
            load_seconds = time.monotonic() - started
            fake.send_text(1001, "hello")
            fake.wait_for_sync(lambda c: c.method == "sendMessage" and c.params["chat_id"] == 1001, timeout=60)
        finally:
            bot.send_signal(signal.SIGTERM)
            output = bot.communicate(timeout=60)[0]
    assert bot.returncode == 0, output
    summary = [line for line in output.splitlines() if "serving @shopbot_test_bot" in line]
    assert len(summary) == 1 and "FutureWarning" not in output and "%|" not in output, output  # no tqdm bars
    print(f"start to healthy: {load_seconds:.1f} s")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path):
    # Only the executable's path differs from an install in /opt/shopbot: verify insists that it exists.
    unit = tmp_path / "shopbot.service"
    text = (REPO / "deploy" / "shopbot.service").read_text(encoding="utf-8")
    unit.write_text(text.replace("/opt/shopbot/.venv/bin/shopbot", sys.executable), encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
