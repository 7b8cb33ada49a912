# model.py
import torch
from ops.swish.spec import swish


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 16)

    def forward(self, x):
        return swish(self.fc(x), beta=1.5)


torch.manual_seed(0)
model = Net().eval()
example_inputs = (torch.randn(4, 16),)
dynamic_shapes = ({0: torch.export.Dim("batch")},)
