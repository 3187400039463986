"""config.toml: the shipped defaults load, and every kind of bad value stops start-up naming its key."""

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import replace

import pytest

from bot.config import DEFAULT_CONFIG, MODEL_KEY_ENV, TOKEN_ENV, ConfigError, load_config


def dump_toml(table: dict, prefix: str = "") -> str:
    """Enough TOML for config files: scalars first, then sub-tables (json strings are valid TOML strings, but not its
    \\u escapes of an emoji's surrogate pair: characters are written as they are)."""
    scalars = [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in table.items() if not isinstance(v, dict)]
    out = ([f"[{prefix}]"] if prefix else []) + scalars
    for k, v in table.items():
        if isinstance(v, dict):
            out.append(dump_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(out)


def override(tmp_path, dotted_key: str, value):
    """The shipped config with one key set to `value`."""
    raw = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    *sections, key = dotted_key.split(".")
    table = raw
    for section in sections:
        table = table.setdefault(section, {})
    table[key] = value
    path = tmp_path / "config.toml"
    path.write_text(dump_toml(raw), encoding="utf-8")
    return path


def test_shipped_defaults_load_with_paths_beside_the_file():
    config = load_config(environ={})
    assert config.model.source == "embedded"
    assert config.chat.generation.temperature == 0.7
    assert config.chat.generation.repetition_penalty == 1.2
    assert config.sentiment.generation.temperature == 0.0
    assert config.storage.path == DEFAULT_CONFIG.parent / "data" / "shopbot.db"
    assert config.telegram_token is None


def test_installed_without_the_repo_it_reads_config_toml_in_the_folder_it_starts_in(tmp_path, monkeypatch):
    # `pip install .` puts no config.toml beside the package: the shop's folder holds it, with its data.
    monkeypatch.setattr("bot.config.DEFAULT_CONFIG", tmp_path / "site-packages" / "config.toml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"--config: no config.toml in {tmp_path}: pass --config PATH"):
        load_config(environ={})
    (tmp_path / "config.toml").write_text(DEFAULT_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_config(environ={}).storage.path == tmp_path / "data" / "shopbot.db"


def test_token_comes_from_the_environment_only(tmp_path):
    assert load_config(environ={TOKEN_ENV: " 123:abc "}).telegram_token == "123:abc"
    with pytest.raises(ConfigError, match="telegram.token: never put the bot token in the file"):
        load_config(override(tmp_path, "telegram.token", "123:abc"), environ={})


def test_the_model_servers_api_key_comes_from_the_environment_only(tmp_path):
    config = load_config(environ={MODEL_KEY_ENV: "sk-secret"})
    assert config.model_api_key == "sk-secret" and "sk-secret" not in repr(config)
    with pytest.raises(ConfigError, match=f"model.api_key: never put the API key in the file; set {MODEL_KEY_ENV}"):
        load_config(override(tmp_path, "model.api_key", "sk-secret"), environ={})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("alerts.threshold", 1.5, "alerts.threshold: must be between 0 and 1"),
        ("alerts.threshold", "high", "alerts.threshold: must be float, got str"),
        ("sentiment.method", "vibes", "sentiment.method: must be one of generate, logits, head"),
        ("chat.generation.max_new_tokens", 0, "chat.generation.max_new_tokens: must be between 1 and 4096"),
        ("chat.history_tokens", True, "chat.history_tokens: must be int, got bool"),
        ("model.weights", "int3", "model.weights: must be one of int4, int8, bf16, fp32"),
        ("chat.system_prompt", "  ", "chat.system_prompt: must not be empty"),
        ("telegram.base_url", "api.telegram.org", "telegram.base_url: must be an http(s) URL"),
        ("alerts.operator_chat_id", "ops", "alerts.operator_chat_id: must be an integer chat id"),
        ("storage", "shopbot.db", "storage: must be a table"),
        ("knowledge.languages.en.answer_from", "poetry", "knowledge.languages.en.answer_from: must be one of entry, model"),
        ("knowledge.languages.zh.wrap", "您好！", "knowledge.languages.zh.wrap: must contain {answer}"),
        ("knowledge.languages.en.unsure_reply", "Hm {price}", "knowledge.languages.en.unsure_reply: only {answer}"),
        ("knowledge.languages.en.tone", "warm", "knowledge.languages.en.tone: unknown key"),
        ("knowledge.sure_margin", -1, "knowledge.sure_margin: must be >= 0"),
        ("model.context_tokens", 512, "model.context_tokens: must hold chat.history_tokens"),
        ("model.kv_cache_mb", 0, "model.kv_cache_mb: must be >= 1"),
        ("model.backend", "torch", "model.backend: must be one of local, openai"),
        ("model.max_concurrency", 0, "model.max_concurrency: must be >= 1"),
        ("telegram.poll_timeout", "30", "telegram.poll_timeout: must be int, got str '30'"),
        ("alerts.human_phrases", ["talk to a human", " "], "alerts.human_phrases[1]: must not be empty"),
        ("web.allowed_origins", ["https://shop.example/chat"], "web.allowed_origins[0]: must be a scheme and host"),
        ("knowledge.languages.en.weights", {"lexical": -1.0}, "knowledge.languages.en.weights.lexical: must be >= 0"),
        ("knowledge.languages.zh.weights", "best", 'knowledge.languages.zh.weights: must be "auto" or a table'),
        ("knowledge.token_layer", 0, "knowledge.token_layer: must be >= 1"),
        ("knowledge.token_layer", "deep", 'knowledge.token_layer: must be "fifth" or "auto" or a number'),
        ("telegram_token", "123:abc", "telegram_token: unknown key"),
        ("alerts.outbox_retry_seconds", 1e300, "alerts.outbox_retry_seconds: must be > 0 and at most 86400"),
        ("storage.path", ".", "storage.path: is a folder; name the database file in it"),
    ],
)
def test_bad_values_name_the_key_and_the_reason(tmp_path, key, value, message):
    with pytest.raises(ConfigError) as err:
        load_config(override(tmp_path, key, value), environ={})
    assert message in str(err.value)


def test_an_infinite_number_is_refused_with_its_key(tmp_path):
    # Infinity passes every lower bound: "inf" minutes would fail later, deep inside, as a timer it cannot schedule.
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert "\ntimeout_seconds = 60" in text
    (tmp_path / "config.toml").write_text(text.replace("\ntimeout_seconds = 60", "\ntimeout_seconds = inf #", 1),
                                          encoding="utf-8")
    with pytest.raises(ConfigError, match=r"model\.timeout_seconds: .*finite"):
        load_config(tmp_path / "config.toml", environ={})


def test_a_customer_text_is_one_string_for_every_language_or_a_table_with_english(tmp_path):
    """A config from before per-language texts keeps working; a table without "en" is refused, naming the key."""
    one = load_config(override(tmp_path, "handoff.human_reply", "A person will answer."), environ={})
    assert one.handoff.human_reply.for_lang("zh") == one.handoff.human_reply.for_lang("en") == "A person will answer."
    shipped = load_config(environ={}).telegram.welcome
    assert shipped.for_lang("zh") != shipped.for_lang("en") and shipped.for_lang("de") == shipped.for_lang("en")
    with pytest.raises(ConfigError, match=r'telegram\.welcome: needs an "en" text'):
        load_config(override(tmp_path, "telegram.welcome", {"zh": "您好"}), environ={})
    with pytest.raises(ConfigError, match=r"telegram\.queue_notice\.zh: only \{position\} can be filled in"):
        load_config(override(tmp_path, "telegram.queue_notice", {"en": "{position}", "zh": "第 {place} 位"}), environ={})


def test_a_text_left_out_is_named_not_defaulted_to_empty(tmp_path):
    path = override(tmp_path, "chat.fallback_reply", "")
    path.write_text(path.read_text(encoding="utf-8").replace('fallback_reply = ""\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError, match="chat.fallback_reply: missing: it has no default"):
        load_config(path, environ={})


def test_a_language_table_may_change_one_text_and_keeps_the_shipped_others(tmp_path):
    path = tmp_path / "config.toml"
    shipped = DEFAULT_CONFIG.read_text(encoding="utf-8")
    en_table = shipped[shipped.index("[knowledge.languages.en]"):shipped.index("[knowledge.languages.zh]")]
    path.write_text(shipped.replace(en_table, '[knowledge.languages.en]\nwrap = "From our shop: {answer}"\n\n'),
                    encoding="utf-8")
    en = load_config(path, environ={}).knowledge.languages["en"]
    assert en.wrap == "From our shop: {answer}"
    assert en.greeting_reply == load_config(environ={}).knowledge.languages["en"].greeting_reply


def test_settings_are_immutable_values_that_replace_copies_and_checks_again():
    config = load_config(environ={})
    with pytest.raises(AttributeError):
        config.alerts.threshold = 0.1
    assert replace(config.alerts, threshold=0.5).threshold == 0.5 and config.alerts.threshold == 0.7
    with pytest.raises(ValueError, match="must be between 0 and 1"):
        replace(config.alerts, threshold=1.5)


def test_a_remote_backend_needs_the_servers_url(tmp_path):
    path = override(tmp_path, "model.backend", "openai")
    with pytest.raises(ConfigError, match="model.base_url: must be the server's http"):
        load_config(path, environ={})


def test_unknown_key_is_a_typo_not_silently_ignored(tmp_path):
    path = override(tmp_path, "alerts.treshold", 0.5)
    with pytest.raises(ConfigError, match=r"alerts.treshold: unknown key"):
        load_config(path, environ={})


def test_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[alerts\nthreshold = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken, environ={})


def test_a_config_that_cannot_be_read_names_the_path_and_why(tmp_path, capsys):
    from bot.cli import main

    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[chat]\nsystem_prompt = "Café"\n'.encode("latin-1"))
    for path, reason in ((tmp_path, "is a folder"), (latin1, "is not UTF-8 (line 2: byte 0xe9)")):
        assert main(["chat", "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert err == f"shopbot: config error: --config: {path} {reason}\n"


def test_an_unreadable_config_names_the_path_and_why(tmp_path):
    """The CLI in its own process, as a shop owner runs it; as root, without the capability to read any file."""
    path = override(tmp_path, "alerts.threshold", 0.5)
    path.chmod(0)
    no_override = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                   "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    done = subprocess.run([*no_override, sys.executable, "-m", "bot.cli", "chat", "--config", str(path)],
                          cwd=DEFAULT_CONFIG.parent, capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (2, f"shopbot: config error: --config: {path} cannot be read "
                                                 "(permission denied)\n")


def test_cli_reports_a_bad_config_and_exits_2(tmp_path, capsys):
    from bot.cli import main

    assert main(["chat", "--config", str(override(tmp_path, "alerts.threshold", -1))]) == 2
    assert "config error: alerts.threshold: must be between 0 and 1" in capsys.readouterr().err


def test_cli_reads_the_config_named_before_the_command(tmp_path, capsys):
    from bot.cli import main

    assert main(["--config", str(override(tmp_path, "alerts.threshold", -1)), "chat"]) == 2
    assert "config error: alerts.threshold: must be between 0 and 1" in capsys.readouterr().err
