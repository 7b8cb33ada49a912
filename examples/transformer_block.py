"""A pre-norm transformer block built from the bundled transformer ops, with dynamic batch and sequence:

    x -> RmsNorm -> q/k/v projections (LinearAct, activation="none") -> RotaryEmbedding on q and k
      -> causal attention (plain torch) -> output projection (LinearAct) -> + x
      -> RmsNorm -> MLP (LinearAct gelu -> LinearAct none) -> + residual

    opkit verify examples/transformer_block.py
"""

import torch

from ops.linear_act.spec import linear_act
from ops.rms_norm.spec import rms_norm
from ops.rotary_embedding.spec import rotary_embedding


class TransformerBlock(torch.nn.Module):
    def __init__(self, d_model: int = 64, n_heads: int = 4, d_ff: int = 256) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.norm1 = torch.nn.Parameter(1.0 + 0.1 * torch.randn(d_model))
        self.qkv = torch.nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = torch.nn.Linear(d_model, d_model)
        self.norm2 = torch.nn.Parameter(1.0 + 0.1 * torch.randn(d_model))
        self.up = torch.nn.Linear(d_model, d_ff)
        self.down = torch.nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, d_model = x.shape
        h = rms_norm(x, self.norm1, epsilon=1e-6)
        qkv = linear_act(h, self.qkv.weight, None, activation="none")  # no bias: the optional input is absent
        q, k, v = (t.reshape(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)
                   for t in qkv.split(d_model, dim=-1))  # [batch, heads, seq, head_dim]
        positions = torch.arange(seq)
        q = rotary_embedding(q, positions, base=10000.0, interleaved=False)
        k = rotary_embedding(k, positions, base=10000.0, interleaved=False)
        attn = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        attn = attn.transpose(1, 2).reshape(batch, seq, d_model)
        x = x + linear_act(attn, self.out.weight, self.out.bias, activation="none")
        h = rms_norm(x, self.norm2, epsilon=1e-6)
        return x + linear_act(linear_act(h, self.up.weight, self.up.bias, activation="gelu"),
                              self.down.weight, self.down.bias, activation="none")


torch.manual_seed(0)
model = TransformerBlock().eval()
example_inputs = (torch.randn(2, 16, 64),)
dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=64), 1: torch.export.Dim("seq", min=2, max=1024)},)
