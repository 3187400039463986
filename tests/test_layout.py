"""The layout keeps its promises: the core and the other channels run without python-telegram-bot, benches share
helpers with tests through testkit/, not tests/."""

import subprocess
import sys

from tests.conftest import REPO


def modules(folder: str, leaving_out: str | None = None) -> list[str]:
    """Dotted names of every module under `folder` (read from the files: importing packages would run them)."""
    names = []
    for path in sorted((REPO / folder).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return [name for name in names if not (leaving_out and (name + ".").startswith(leaving_out + "."))]


def imported_in_a_fresh_process(names: list[str]) -> set[str]:
    """The top-level packages loaded after importing `names` in a new interpreter."""
    script = ("import importlib, sys\n"
              f"for name in {names!r}: importlib.import_module(name)\n"
              "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_core_storage_engine_and_other_channels_never_load_telegram():
    core = modules("bot", leaving_out="bot.telegram") + modules("storage")
    assert {"bot.service", "bot.escalation", "bot.knowledge", "bot.llm.engine", "bot.channels.web.server",
            "bot.channels.console", "storage.db"} <= set(core)
    loaded = imported_in_a_fresh_process(core)
    assert "storage" in loaded and "torch" in loaded  # the imports really ran
    assert "telegram" not in loaded, "a module outside bot/telegram/ imports python-telegram-bot"


def test_the_telegram_channel_imports_and_benches_do_not_reach_into_tests():
    assert "telegram" in imported_in_a_fresh_process(modules("bot/telegram"))
    for script in sorted((REPO / "bench").glob("*.py")):
        text = script.read_text(encoding="utf-8")
        assert "from tests" not in text and "import tests" not in text, script.name
