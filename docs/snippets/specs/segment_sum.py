import torch

import opkit
from opkit import Tensor


# --8<-- [start:spec]
@opkit.op("SegmentSum", domain="com.mycompany", types={"T": ("float32", "float64")},
          shapes={"y": ("num_segments", "data[1:]")})
def segment_sum(data: Tensor["T"], segment_ids: Tensor["int64", 1], num_segments: int) -> Tensor["T"]:
    y = torch.zeros((num_segments, *data.shape[1:]), dtype=data.dtype)
    return y.index_add_(0, segment_ids, data)


segment_sum.constrain(shapes={"segment_ids": ("data[0]",)},          # one id per row of data
                      values={"segment_ids": (0, "num_segments")},   # each id in [0, num_segments)
                      attrs={"num_segments": [4, 1, 9]})             # first = the value of the default cases
# --8<-- [end:spec]
