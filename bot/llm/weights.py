"""The model's weight matrices in the configured format, read one tensor at a time from a GGUF or a checkpoint.

A GGUF's own 4-bit blocks (Q4_0, Q4_1, Q4_K: groups of 32 along K with a scale and a minimum) are exactly the
form torch's CPU int4 kernel computes, (q - 8) * scale + zero, so they are packed as they are, never
re-quantized. Other tensors (Q5/Q6/Q8 blocks, f16/bf16/f32) are dequantized one at a time and quantized to
the configured format, so no fp32 copy of the whole model is ever held.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

WEIGHT_FORMATS = ("int4", "int8", "bf16", "fp32")
GROUP = 32  # int4 group size along K: GGUF's block size, and the kernel's smallest
CHUNK_ROWS = 4096  # rows quantized or packed at a time (a multiple of the int4 kernel's row block)
FOUR_BIT = ("Q4_0", "Q4_1", "Q4_K")
# From this many rows at once, unpacking W (~11 ms for 3072 x 576) for one GEMM (fp32, or bf16: bulk_dtype) beats the
# int4 kernel: 3072 x 576 at 256 / 512 / 2048 rows took 19.5 / 40.2 / 158.7 ms int4, 20.2 / 33.6 / 102.2 ms fp32
# (AVX2 has no fast bf16 GEMM: bf16 was 3x slower than int4). Decode (1-8 rows) and short prompts stay on the kernel.
LARGE_BATCH = 320
BF16_ROW_STEP = 256  # a bf16 GEMM's rows are padded to a multiple of this (Int4.__call__)


@functools.cache
def bulk_dtype() -> torch.dtype:
    """The dtype a large batch's multiplications run in on this CPU, measured once: bf16 where its GEMM is clearly
    faster than fp32 (AMX tiles: 6x on a Xeon with AMX, analyze 67 -> 148 rows/s), else fp32 (AVX2, or AVX512
    without AMX: bf16 1.7-3x slower). The activations are bf16 either way; bf16 W rounds 4-bit weights' scaled
    values to 8 bits, and its labels agree with the int4 kernel's (the bot's live reading) as often as fp32's do."""
    x, w = torch.randn(512, 576), torch.randn(1536, 576)  # a batch through SmolLM2-135M's gate/up-sized matrix

    def seconds(dtype: torch.dtype) -> float:
        a, b = x.to(dtype), w.to(dtype)
        torch.nn.functional.linear(a, b)  # the first call sets up the kernel
        times = []
        for _ in range(3):
            started = time.perf_counter()
            torch.nn.functional.linear(a, b)
            times.append(time.perf_counter() - started)
        return min(times)

    return torch.bfloat16 if 1.5 * seconds(torch.bfloat16) < seconds(torch.float32) else torch.float32


def activation_dtype(weights: str) -> torch.dtype:
    """The quantized kernels are vectorised for bf16 activations only; fp32 weights run in fp32."""
    return torch.float32 if weights == "fp32" else torch.bfloat16


# --- matrices: y = x @ W.T, and W's rows for an embedding lookup ----------------------------------------


class Dense:
    """W held as it is, in the activation dtype."""

    def __init__(self, w: torch.Tensor, dtype: torch.dtype):
        self.w = w.to(dtype).contiguous()  # [N, K]
        self.out_features = self.w.shape[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w.t()

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        return self.w[ids]

    def nbytes(self) -> int:
        return self.w.nbytes


class Int8:
    """W as int8 with one scale per row (weight-only: activations stay bf16)."""

    def __init__(self, w: torch.Tensor):
        self.q = torch.empty(w.shape, dtype=torch.int8)  # [N, K]
        scale = torch.empty(w.shape[0])
        # A few thousand rows at a time: a vocabulary table's fp32 temporaries would be several times its size.
        for start in range(0, w.shape[0], CHUNK_ROWS):
            rows = w[start:start + CHUNK_ROWS].float()
            scale[start:start + CHUNK_ROWS] = rows.abs().amax(1).clamp(min=1e-8) / 127
            self.q[start:start + CHUNK_ROWS] = (rows / scale[start:start + CHUNK_ROWS, None]).round_().clamp_(-127, 127)
        self.scale = scale.to(torch.bfloat16)  # [N]
        self.out_features = self.q.shape[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.aten._weight_int8pack_mm(x.reshape(-1, shape[-1]), self.q, self.scale)
        return y.reshape(*shape[:-1], -1)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        return self.q[ids].to(torch.bfloat16) * self.scale[ids, None]

    def nbytes(self) -> int:
        return self.q.nbytes + self.scale.nbytes


@dataclass
class Blocks4:
    """4-bit weights in groups of 32 along K: w = q * scale + low  (q in 0..15)."""

    q: torch.Tensor  # [N, K] uint8
    scale: torch.Tensor  # [N, K / 32] float32
    low: torch.Tensor  # [N, K / 32] float32

    @classmethod
    def of(cls, w: torch.Tensor) -> "Blocks4":
        """Min/max quantization of a dense matrix (for tensors that were not 4-bit already), a few rows at a
        time so the temporaries stay small."""
        n, k = w.shape
        parts = []
        for rows in w.split(CHUNK_ROWS):
            groups = rows.float().reshape(len(rows), k // GROUP, GROUP)
            low, high = groups.amin(-1), groups.amax(-1)
            scale = ((high - low) / 15).clamp(min=1e-8)
            q = ((groups - low[..., None]) / scale[..., None]).round_().clamp_(0, 15).to(torch.uint8)
            parts.append((q.reshape(len(rows), k), scale, low))
        return cls(*(torch.cat(field) for field in zip(*parts)))

    def dense(self) -> torch.Tensor:
        n, k = self.q.shape
        return (self.q.reshape(n, -1, GROUP).float() * self.scale[..., None] + self.low[..., None]).reshape(n, k)

    def permute_rows(self, order) -> "Blocks4":
        return Blocks4(order(self.q), order(self.scale), order(self.low))


class Int4:
    """W packed for torch's CPU int4 kernel, groups of 32 along K; rows padded to the kernel's block of rows."""

    def __init__(self, blocks: Blocks4):
        n, k = blocks.q.shape
        padded = -(-n // _int4_layout().block) * _int4_layout().block
        q = torch.zeros(padded, k, dtype=torch.uint8)
        q[:n] = blocks.q
        scale = torch.ones(padded, k // GROUP)
        zero = torch.zeros(padded, k // GROUP)
        scale[:n] = blocks.scale
        zero[:n] = blocks.low + 8 * blocks.scale  # the kernel computes (q - 8) * scale + zero
        # Row blocks are packed independently, so chunks of rows pack on their own (int32 temporaries stay small).
        self.packed = torch.cat([torch.ops.aten._convert_weight_to_int4pack_for_cpu(rows.int(), 1)
                                 for rows in q.split(CHUNK_ROWS)])  # [padded, K / 2] uint8
        self.scales_zeros = torch.stack([scale, zero], -1).transpose(0, 1).contiguous().to(torch.bfloat16)
        self.out_features, self.in_features = n, k  # scales_zeros: [K / 32, padded, 2]
        self.keep_unpacked = False  # set for bulk reading: the first large batch's unpacked W is then kept
        self.unpacked: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        if x.shape[0] >= LARGE_BATCH:  # prefill, batched sentiment: W unpacked once serves every row
            w = self.unpacked if self.unpacked is not None else self.dense().to(bulk_dtype())
            if self.keep_unpacked:
                self.unpacked = w
            rows = x.shape[0]
            if w.dtype == torch.bfloat16:  # oneDNN compiles a kernel per row count and keeps it: few counts, not one
                x = torch.nn.functional.pad(x, (0, 0, 0, -rows % BF16_ROW_STEP))  # per pass (+500 MB over a file)
            y = (x.to(w.dtype) @ w.t())[:rows].to(x.dtype)
        else:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.packed, GROUP, self.scales_zeros)
        if y.shape[-1] != self.out_features:
            y = y[:, :self.out_features]
        return y.reshape(*shape[:-1], -1)

    def dense(self) -> torch.Tensor:
        """W as fp32 [padded N, K], unpacked for one large multiplication and then dropped."""
        half = _int4_layout().block // 2
        table = self.packed.view(-1, self.in_features, half)  # [N / block, K, block / 2]
        # Row b * block + r sits in byte [b, k, r] (low nibble) for r < half, else [b, k, r - half] (high).
        q = torch.stack([table & 0x0F, table >> 4], 1).transpose(2, 3).reshape(-1, self.in_features // GROUP, GROUP)
        scale, zero = self.scales_zeros.float().permute(2, 1, 0)  # [padded N, K / 32] each
        # In place: one fp32 matrix at a time, not four (the peak memory of a long prompt's step).
        return q.float().sub_(8).mul_(scale[..., None]).add_(zero[..., None]).flatten(1)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """[..., K] bf16 rows, read straight from the packed table (the embedding lookup)."""
        q = _int4_layout().unpack(self.packed, ids, self.in_features)  # [..., K] in 0..15
        sz = self.scales_zeros[:, ids]  # [K / 32, ..., 2]
        scale, zero = (sz[..., i].movedim(0, -1).repeat_interleave(GROUP, -1) for i in (0, 1))
        return (q.to(torch.bfloat16) - 8) * scale + zero

    def nbytes(self) -> int:
        return self.packed.nbytes + self.scales_zeros.nbytes


@dataclass(frozen=True)
class _Int4Layout:
    """Where torch's CPU int4 packing puts each weight: rows in blocks of `block`; within a block, byte
    [k, r] holds row r in its low nibble and row r + block/2 in its high one (found by probing, see below)."""

    block: int

    def unpack(self, packed: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
        half = self.block // 2
        table = packed.view(-1, k, half)  # [N / block, K, block / 2]
        row = ids % self.block
        byte = table[ids // self.block, :, row % half]  # [..., K]
        return torch.where((row < half)[..., None], byte & 0x0F, byte >> 4)


_LAYOUT: _Int4Layout | None = None


def _int4_layout() -> _Int4Layout:
    """The packing differs by CPU (its vector width), so it is probed once rather than assumed."""
    global _LAYOUT
    if _LAYOUT is None:
        probe = torch.randint(0, 16, (128, 64), dtype=torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(probe, 1)
        ids = torch.arange(128)
        for block in (32, 64, 16, 128):
            if torch.equal(_Int4Layout(block).unpack(packed, ids, 64).int(), probe):
                _LAYOUT = _Int4Layout(block)
                break
        else:
            raise RuntimeError("unknown int4 packing layout in this torch build: use [model] weights = \"int8\"")
    return _LAYOUT


Matrix = Dense | Int8 | Int4
Tensor = torch.Tensor | Blocks4  # what a weight source yields: dense (float) or 4-bit blocks


def matrix(parts: list[Tensor], weights: str) -> Matrix:
    """One matrix of `parts` stacked along N (fused QKV, gate/up), in the configured format."""
    if weights == "int4" and _columns(parts[0]) % GROUP == 0:
        blocks = [p if isinstance(p, Blocks4) else Blocks4.of(p) for p in parts]
        return Int4(Blocks4(*(torch.cat(field) for field in zip(*((b.q, b.scale, b.low) for b in blocks)))))
    dense = [p.dense() if isinstance(p, Blocks4) else p for p in parts]
    w = dense[0] if len(dense) == 1 else torch.cat(dense)  # one part (a vocabulary table) is not copied
    if weights == "int8":
        return Int8(w)
    return Dense(w, activation_dtype(weights))  # bf16, fp32, or int4 where K has no groups of 32


def _columns(t: Tensor) -> int:
    return (t.q if isinstance(t, Blocks4) else t).shape[1]


def vector(t: Tensor, weights: str) -> torch.Tensor:
    return (t.dense() if isinstance(t, Blocks4) else t).to(activation_dtype(weights))


# --- sources: name -> tensor, one at a time ------------------------------------------------------------


class GGUFSource:
    """Tensors of a GGUF under transformers' names, Q/K rows back in transformers' order."""

    NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
    LAYER = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}

    def __init__(self, path: Path, heads: int, kv_heads: int):
        import gguf

        self.reader = gguf.GGUFReader(str(path))
        self.arch = str(bytes(self.reader.fields["general.architecture"].parts[-1]), "utf-8")
        self.tensors = {self._hf_name(t.name): t for t in self.reader.tensors}
        self.heads, self.kv_heads = heads, kv_heads

    def _hf_name(self, name: str) -> str:
        stem, _, kind = name.rpartition(".")  # kind: weight | bias
        if stem.startswith("blk."):
            _, layer, part = stem.split(".", 2)
            return f"model.layers.{layer}.{self.LAYER.get(part, part)}.{kind}"
        return f"{self.NAMES.get(stem, stem)}.{kind}"

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def __getitem__(self, name: str) -> Tensor:
        import gguf

        t = self.tensors[name]
        kind = t.tensor_type.name
        if kind in FOUR_BIT:
            value: Tensor = _blocks4(kind, np.asarray(t.data))
        else:
            data = np.asarray(t.data)
            shape = tuple(int(d) for d in reversed(t.shape))
            if kind in ("F32", "F16"):
                value = torch.from_numpy(data.astype(np.float32).reshape(shape))
            else:  # dequantized a few rows at a time: one fp32 tensor, no fp32 temporaries of its size
                value = torch.empty(shape)
                for start in range(0, shape[0], CHUNK_ROWS):
                    rows = gguf.quants.dequantize(data[start:start + CHUNK_ROWS], t.tensor_type)
                    value[start:start + CHUNK_ROWS] = torch.from_numpy(rows.astype(np.float32))
        # llama.cpp's converter interleaves Llama's Q and K rows for its rotary layout; undo it (as transformers'
        # reverse_permute_weights does) or attention is silently wrong. Qwen2 GGUFs are not permuted.
        if self.arch == "llama" and (".q_proj." in name or ".k_proj." in name):
            heads = self.heads if ".q_proj." in name else self.kv_heads
            order = lambda x: _unpermute(x, heads)  # noqa: E731
            value = value.permute_rows(order) if isinstance(value, Blocks4) else order(value)
        return value


def _unpermute(x: torch.Tensor, heads: int) -> torch.Tensor:
    dim = x.shape[0] // heads // 2
    return x.reshape(heads, dim, 2, *x.shape[1:]).swapaxes(2, 1).reshape(x.shape)


def _blocks4(kind: str, raw: np.ndarray) -> Blocks4:
    """A GGUF Q4_0 / Q4_1 / Q4_K tensor ([N, bytes per row]) as 4-bit groups of 32."""
    n = raw.shape[0]
    if kind == "Q4_K":  # super-blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of q
        import gguf

        blocks = raw.reshape(-1, 144)
        d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)  # [B, 1]
        dmin = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
        sc, mn = gguf.quants.Q4_K.get_scale_min(blocks[:, 4:16].copy())  # [B, 8] each
        scale, low = d * sc.astype(np.float32), -dmin * mn.astype(np.float32)
        qs = blocks[:, 16:].reshape(-1, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
        q = (qs & 0x0F).reshape(n, -1)  # sub-block 2j in the low nibbles of 32 bytes, 2j + 1 in the high ones
    else:  # blocks of 32: f16 d, (Q4_1: f16 m), 16 bytes: weight j in the low nibble of byte j, j + 16 high
        size = 18 if kind == "Q4_0" else 20
        blocks = raw.reshape(n, -1, size)
        scale = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
        low = -8 * scale if kind == "Q4_0" else blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
        qs = blocks[..., size - 16:]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).reshape(n, -1)
    return Blocks4(torch.from_numpy(np.ascontiguousarray(q)), torch.from_numpy(scale.reshape(n, -1)),
                   torch.from_numpy(low.reshape(n, -1)))


class CheckpointSource:
    """Tensors of a transformers checkpoint directory (safetensors), read one at a time."""

    def __init__(self, directory: Path):
        from safetensors import safe_open

        index = directory / "model.safetensors.index.json"
        files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() \
            else [p.name for p in directory.glob("*.safetensors")]
        if not files:
            raise FileNotFoundError(f"{directory} has no .safetensors weights")
        self.files = [safe_open(directory / f, framework="pt") for f in files]
        self.where = {name: f for f in self.files for name in f.keys()}

    def __contains__(self, name: str) -> bool:
        return name in self.where

    def __getitem__(self, name: str) -> Tensor:
        return self.where[name].get_tensor(name).float()

