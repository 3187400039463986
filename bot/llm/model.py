"""Our decoder for the architectures shopbot serves (Llama, Qwen2): plain torch, a few ops per layer.

B = rows (customers), S = new tokens per row, H = hidden size, NH / KVH = query / key-value heads, D = head dim.
Where keys and values are kept and what each row attends to is the caller's `Attention` (slots.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from bot.llm.weights import Blocks4, Int4, Matrix, activation_dtype, matrix, vector

ARCHITECTURES = ("llama", "qwen2")


@dataclass(frozen=True)
class Shape:
    """What the decoder needs of a transformers config."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    eps: float
    rope_theta: float
    vocab: int
    qkv_bias: bool

    @classmethod
    def of(cls, config) -> "Shape":
        """The config's shape; ValueError for an architecture or rope variant this decoder does not implement."""
        if config.model_type not in ARCHITECTURES:
            raise ValueError(f"architecture {config.model_type!r} (ours: {', '.join(ARCHITECTURES)})")
        rope = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"rope type {rope['rope_type']!r} (ours: default)")
        heads = config.num_attention_heads
        return cls(
            layers=config.num_hidden_layers, hidden=config.hidden_size, heads=heads,
            kv_heads=config.num_key_value_heads or heads,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
            eps=config.rms_norm_eps, rope_theta=rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)),
            vocab=config.vocab_size,
            qkv_bias=config.model_type == "qwen2" or bool(getattr(config, "attention_bias", False)),
        )


class Attention(Protocol):
    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q [B, NH, S, D], this step's k and v [B, KVH, S, D] -> attention output [B, NH, S, D]."""


@dataclass
class Layer:
    attn_norm: torch.Tensor  # [H]
    qkv: Matrix  # [(NH + 2 KVH) D, H], Q, K and V fused
    qkv_bias: torch.Tensor | None  # [(NH + 2 KVH) D]
    o: Matrix  # [H, NH D]
    mlp_norm: torch.Tensor  # [H]
    gate_up: Matrix  # [2 I, H], gate and up fused
    down: Matrix  # [H, I]


class Decoder:
    """Token ids in, hidden states out; `logits` applies the final norm and the LM head."""

    def __init__(self, shape: Shape, source, weights: str, max_positions: int):
        self.shape, self.weights = shape, weights
        self.dtype = activation_dtype(weights)
        self.layers = []
        for i in range(shape.layers):
            p = f"model.layers.{i}."
            parts = lambda *names: [source[p + n] for n in names]  # noqa: E731
            bias = None
            if shape.qkv_bias:
                bias = torch.cat([vector(source[p + f"self_attn.{x}_proj.bias"], weights) for x in "qkv"])
            self.layers.append(Layer(
                attn_norm=vector(source[p + "input_layernorm.weight"], weights),
                qkv=matrix(parts("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"),
                           weights),
                qkv_bias=bias,
                o=matrix(parts("self_attn.o_proj.weight"), weights),
                mlp_norm=vector(source[p + "post_attention_layernorm.weight"], weights),
                gate_up=matrix(parts("mlp.gate_proj.weight", "mlp.up_proj.weight"), weights),
                down=matrix(parts("mlp.down_proj.weight"), weights),
            ))
        self.norm = vector(source["model.norm.weight"], weights)
        # The embedding lookup reads rows of the quantized table; a tied model's LM head is the same table. Tied is
        # read from the weights, not the config: a model stores its own LM head only when it has one (or a copy).
        self.embedding = _vocabulary(source["model.embed_tokens.weight"], weights)
        self.head = self.embedding if "lm_head.weight" not in source else _vocabulary(source["lm_head.weight"], weights)
        # RoPE tables, [positions, D]: rotate_half layout (the first half of D pairs with the second).
        inverse = 1.0 / shape.rope_theta ** (torch.arange(0, shape.head_dim, 2).float() / shape.head_dim)
        angles = torch.outer(torch.arange(max_positions).float(), inverse)
        self.cos = torch.cat([angles.cos()] * 2, -1).to(self.dtype)
        self.sin = torch.cat([angles.sin()] * 2, -1).to(self.dtype)

    @property
    def max_positions(self) -> int:
        return self.cos.shape[0]

    def nbytes(self) -> int:
        tables = [self.embedding] + ([self.head] if self.head is not self.embedding else [])
        return sum(m.nbytes() for ly in self.layers for m in (ly.qkv, ly.o, ly.gate_up, ly.down)) + \
            sum(m.nbytes() for m in tables)

    def keep_unpacked(self) -> None:
        """Keep each 4-bit matrix unpacked once a large batch has unpacked it, for bulk reading (`shopbot analyze`):
        the layers it reads are then unpacked once, not for every pass (1.05-1.1x measured), at 4 bytes a weight more
        (~210 MB for the 15 layers the head reads on SmolLM2-135M; 2 bytes where bulk_dtype is bf16). Never for
        serving: the memory is the point."""
        for ly in self.layers:
            for m in (ly.qkv, ly.o, ly.gate_up, ly.down):
                if isinstance(m, Int4):
                    m.keep_unpacked = True

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, attention: Attention,
                keep: tuple[int, ...] = (), depth: int | None = None) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """tokens, positions [B, S] -> (hidden [B, S, H] after `depth` blocks (all by default), {layer: hidden
        [B, S, H] after that many blocks} for each of `keep`)."""
        s = self.shape
        B, S = tokens.shape
        x = self.embedding.rows(tokens).to(self.dtype)  # [B, S, H]
        cos, sin = self.cos[positions][:, None], self.sin[positions][:, None]  # [B, 1, S, D]
        kept = {}
        for i, ly in enumerate(self.layers[:depth]):
            qkv = ly.qkv(F.rms_norm(x, (s.hidden,), ly.attn_norm, s.eps))  # [B, S, (NH + 2 KVH) D]
            if ly.qkv_bias is not None:
                qkv = qkv + ly.qkv_bias
            qk, v = qkv.split([(s.heads + s.kv_heads) * s.head_dim, s.kv_heads * s.head_dim], -1)
            # Q and K rotate together: [B, NH + KVH, S, D], then split by heads.
            q, k = _rope(qk.view(B, S, s.heads + s.kv_heads, s.head_dim).transpose(1, 2), cos, sin).split(
                [s.heads, s.kv_heads], 1)
            a = attention(i, q, k, v.view(B, S, s.kv_heads, s.head_dim).transpose(1, 2))  # [B, NH, S, D]
            x = x + ly.o(a.transpose(1, 2).reshape(B, S, s.heads * s.head_dim))
            gate, up = ly.gate_up(F.rms_norm(x, (s.hidden,), ly.mlp_norm, s.eps)).chunk(2, -1)  # [B, S, I] each
            x = x + ly.down(F.silu(gate) * up)
            if i + 1 in keep:
                kept[i + 1] = x
        return x, kept

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [..., H] -> fp32 logits [..., vocab]."""
        return self.head(F.rms_norm(hidden, (self.shape.hidden,), self.norm, self.shape.eps)).float()


def _vocabulary(table, weights: str) -> Matrix:
    """The embedding / LM head table. With int4 weights, a table the GGUF stores with more than 4 bits (the
    embedded model's is Q8_0) is kept as int8: re-quantizing it to 4 bits cost the most accuracy of anything
    (top-1 agreement with fp32 0.84 with it, 0.98 without, tests/test_quality.py and the gguf_int4 sketch)."""
    return matrix([table], "int8" if weights == "int4" and not isinstance(table, Blocks4) else weights)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


# Where the CPU has bf16 arithmetic (AVX512-BF16) decode attends in bf16 like prompts: converting the keys and values
# to fp32 took a sixth of an 8-row decode step there, and 8 customers got 43-44 replies/min instead of 26-33.
BF16_ARITHMETIC = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()  # a private check: fp32 without it


def attend(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, start: int) -> torch.Tensor:
    """q [B, NH, S, D] at positions start.. start + S - 1 over keys/values [B, KVH, start + S, D], causally."""
    S = q.shape[2]
    if S == 1:
        # One query sees every key, so it needs no mask (building and applying one took a third of SDPA's time: 300
        # keys, 30 vs 21 us, 240 calls in an 8-row step). On a CPU without bf16 arithmetic (AVX2) it attends in fp32:
        # there SDPA's bf16 kernel took 3x as long as converting and attending in fp32 (300 keys: 260 vs 121 us).
        if BF16_ARITHMETIC:
            return F.scaled_dot_product_attention(q, keys, values, enable_gqa=True)
        return F.scaled_dot_product_attention(q.float(), keys.float(), values.float(), enable_gqa=True).to(q.dtype)
    # query i sees keys 0 .. start + i (SDPA's is_causal aligns top-left, wrong with a prefix)
    mask = torch.ones(S, start + S, dtype=torch.bool).tril(start)
    return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=True)
