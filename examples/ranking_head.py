"""A ranking head over a batch of scored items grouped by query, with dynamic item count:

    per-item scores from three heads, blended  -> WeightedSum        (variadic input, list attribute)
    scores summed per query                    -> SegmentSum         (output shape from an attribute)
    best k labels of each query                -> TopKLastAxis       (two outputs, float and int64)
    the queries present and their item counts  -> UniqueConsecutive  (data-dependent output size)

    opkit verify examples/ranking_head.py
"""

import torch

from ops.segment_sum.spec import segment_sum
from ops.top_k_last_axis.spec import top_k_last_axis
from ops.unique_consecutive.spec import unique_consecutive
from ops.weighted_sum.spec import weighted_sum

NUM_QUERIES = 6
NUM_LABELS = 16
TOP_K = 4


class RankingHead(torch.nn.Module):
    def __init__(self, d_model: int = 32) -> None:
        super().__init__()
        self.heads = torch.nn.ModuleList(torch.nn.Linear(d_model, NUM_LABELS) for _ in range(3))

    def forward(self, items: torch.Tensor, query_ids: torch.Tensor):
        scores = weighted_sum([torch.tanh(h(items)) for h in self.heads], weights=[0.5, 0.3, 0.2])
        per_query = segment_sum(scores, query_ids, num_segments=NUM_QUERIES)
        best, labels = top_k_last_axis(per_query, k=TOP_K)
        queries, items_per_query = unique_consecutive(query_ids)
        return best, labels, queries, items_per_query


torch.manual_seed(0)
model = RankingHead().eval()
n_items = 20
example_inputs = (torch.randn(n_items, 32),
                  torch.sort(torch.randint(0, NUM_QUERIES, (n_items,))).values)
items = torch.export.Dim("items", min=2, max=4096)
dynamic_shapes = ({0: items}, {0: items})
