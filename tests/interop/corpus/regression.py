# pytorch/examples regression/main.py (fit a polynomial with a Linear layer and a manual update).
import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd import Variable

POLY_DEGREE = 4
rng = np.random.default_rng(0)  # data source: seeded NumPy instead of torch.randn
W_target = torch.from_numpy(rng.standard_normal((POLY_DEGREE, 1)).astype(np.float32)) * 5
b_target = torch.from_numpy(rng.standard_normal(1).astype(np.float32)) * 5


def make_features(x):
    x = x.unsqueeze(1)
    return torch.cat([x ** i for i in range(1, POLY_DEGREE + 1)], 1)


def f(x):
    return x.mm(W_target) + b_target.item()


def get_batch(batch_size=32):
    random = torch.from_numpy(rng.standard_normal(batch_size).astype(np.float32))
    x = make_features(random)
    y = f(x)
    return Variable(x), Variable(y)


fc = torch.nn.Linear(W_target.size(0), 1)
with torch.no_grad():
    fc.weight.copy_(torch.zeros(1, POLY_DEGREE))
    fc.bias.fill_(0.0)
losses = []
for batch_idx in range(50):
    batch_x, batch_y = get_batch()
    fc.zero_grad()
    output = F.smooth_l1_loss(fc(batch_x), batch_y)
    loss = output.item()
    output.backward()
    for param in fc.parameters():
        param.data.add_(-0.1 * param.grad.data)
    losses.append(loss)
RESULT = {"losses": losses, "weight": fc.weight.data.view(-1).tolist(), "bias": fc.bias.item(),
          "type": fc.weight.type().split(".")[-1]}
