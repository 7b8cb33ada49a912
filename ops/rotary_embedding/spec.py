"""RotaryEmbedding (RoPE): rotate pairs of features of x by position-dependent angles.

Layout: x is [..., seq, head_dim] (e.g. [batch, heads, seq, head_dim]; head_dim even);
positions is int64 [seq] (shared by every row), or [batch, seq] (batch = x.shape[0], shared
by the dims between batch and seq, e.g. the heads). With half = head_dim // 2 and
inv_freq[i] = base ** (-2 i / head_dim), the angle of position p and pair i is p * inv_freq[i].

    interleaved=False (GPT-NeoX / Llama "rotate_half"): pair i is (x[..., i], x[..., i + half])
    interleaved=True  (GPT-J): pair i is (x[..., 2 i], x[..., 2 i + 1])
    (a, b) -> (a cos - b sin, b cos + a sin)

Angles, cos and sin are computed in float32 for float16/float32 inputs (as Hugging Face
models do) and in float64 for float64 inputs.
"""

import struct

import torch

import opkit
from opkit import Tensor


@opkit.op("RotaryEmbedding", domain="opkit.examples", types={"T": ("float16", "float32", "float64")},
          shapes={"y": "x"})
def rotary_embedding(x: Tensor["T"], positions: Tensor["int64"], base: float = 10000.0,
                     interleaved: bool = False) -> Tensor["T"]:
    """Rotary position embedding of x [..., seq, head_dim] at positions [seq] or [batch, seq]."""
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"RotaryEmbedding: head_dim (x's last dim) must be even, got {d}")
    half = d // 2
    if half == 0:  # an empty last axis: nothing to rotate
        return x.clone()
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    base = struct.unpack("f", struct.pack("f", base))[0]  # the ONNX attribute is a float32
    # inv_freq in float64, then rounded to the compute type: the kernel does the same.
    inv_freq = torch.pow(base, torch.arange(0, half, dtype=torch.float64, device=x.device) * (-2.0 / d)).to(acc)
    ang = positions.to(acc).unsqueeze(-1) * inv_freq  # [seq, half] or [batch, seq, half]
    if positions.dim() == 2:
        ang = ang.reshape(ang.shape[0], *([1] * (x.dim() - 3)), ang.shape[1], half)
    cos, sin = ang.cos(), ang.sin()
    xf = x.to(acc)
    if interleaved:
        x1, x2 = xf[..., 0::2], xf[..., 1::2]
        y = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)
    else:
        x1, x2 = xf[..., :half], xf[..., half:]
        y = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return y.to(x.dtype)


# Inputs for `opkit test`: x is [..., seq, head_dim] with head_dim even; positions [seq] in [0, 4096).
rotary_embedding.constrain(ranks={"x": (2, 4)}, shapes={"positions": ("x[-2]",)},
                           values={"positions": (0, 4096)}, attrs={"interleaved": [False, True]},
                           valid=lambda a: a["x"].shape[-1] % 2 == 0)


@rotary_embedding.samples
def _rotary_samples(s):
    """Even head dims (the generated shapes are mostly odd), per-batch positions, both layouts."""
    for shape in ((1, 2), (3, 8), (2, 3, 5, 16), (2, 7, 64)):
        for interleaved in (False, True):
            pos = s.randint((shape[-2],), 0, 4096, "int64")
            yield s.sample(s.randn(shape), pos, 10000.0, interleaved, label=f"{shape} interleaved={interleaved}")
    x = s.randn((2, 3, 5, 8))
    yield s.sample(x, s.randint((2, 5), 0, 512, "int64"), 500.0, False, label="positions [batch, seq]")
