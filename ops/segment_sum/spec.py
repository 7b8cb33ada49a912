"""SegmentSum: rows of data summed per segment id (like tf.math.unsorted_segment_sum)."""

import torch

import opkit
from opkit import Tensor


@opkit.op("SegmentSum", domain="opkit.examples",
          types={"T": ("float16", "bfloat16", "float32", "float64", "int32", "int64")},
          shapes={"y": ("num_segments", "data[1:]")})
def segment_sum(data: Tensor["T"], segment_ids: Tensor["int64", 1], num_segments: int) -> Tensor["T"]:
    """y[s] = sum of data[r] over the rows r with segment_ids[r] == s; y[s] = 0 for an empty segment.

    data has shape [N, ...], segment_ids shape [N] (any order); y has shape [num_segments, ...].
    Every id must lie in [0, num_segments): an id outside is an error (never skipped).
    16-bit floats are summed in float32.
    """
    if data.dim() < 1 or segment_ids.shape[0] != data.shape[0]:
        raise ValueError(f"SegmentSum: segment_ids has {segment_ids.shape[0]} ids, data has shape {tuple(data.shape)}")
    if segment_ids.numel() and (int(segment_ids.min()) < 0 or int(segment_ids.max()) >= num_segments):
        raise ValueError(f"SegmentSum: segment ids must lie in [0, {num_segments}), got "
                         f"[{int(segment_ids.min())}, {int(segment_ids.max())}]")
    acc = torch.float32 if data.dtype in (torch.float16, torch.bfloat16) else data.dtype
    y = torch.zeros((num_segments, *data.shape[1:]), dtype=acc)
    return y.index_add_(0, segment_ids, data.to(acc)).to(data.dtype)


@segment_sum.register_fake
def _segment_sum_fake(data, segment_ids, num_segments):
    return data.new_empty((num_segments, *data.shape[1:]))


# `opkit test`: one id per row of data, each a valid segment (README: "Constraining the generated inputs")
segment_sum.constrain(shapes={"segment_ids": ("data[0]",)}, values={"segment_ids": (0, "num_segments")},
                      attrs={"num_segments": [4, 1, 9]})
