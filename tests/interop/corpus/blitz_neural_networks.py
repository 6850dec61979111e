# The 60-minute blitz's "Neural Networks" tutorial (LeNet, the loss and its grad_fn chain, backprop
# into conv1's bias, the SGD update by hand and through optim), in order. The tutorial's torch.randn
# input, target and output gradient come from seeded NumPy, and so do the initial weights. The
# grad_fn chain it prints is printed here too but not compared: lamina composes mse_loss and linear
# from primitives (MeanBackward0, MulBackward0, SubBackward0 where torch prints MseLossBackward0,
# AddmmBackward0, ReluBackward0).
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Net(nn.Module):

    def __init__(self):
        super(Net, self).__init__()
        # 1 input image channel, 6 output channels, 5x5 square convolution kernel
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        # an affine operation: y = Wx + b
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5*5 from image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, input):
        # Convolution layer C1: 1 input image channel, 6 output channels, 5x5 square convolution
        c1 = F.relu(self.conv1(input))
        # Subsampling layer S2: 2x2 grid, purely functional
        s2 = F.max_pool2d(c1, (2, 2))
        c3 = F.relu(self.conv2(s2))
        s4 = F.max_pool2d(c3, 2)
        s4 = torch.flatten(s4, 1)
        f5 = F.relu(self.fc1(s4))
        f6 = F.relu(self.fc2(f5))
        output = self.fc3(f6)
        return output


rng = np.random.default_rng(0)


def randn(*shape):
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))


net = Net()
with torch.no_grad():
    for p in net.parameters():
        p.copy_(randn(*p.shape) * 0.1)
print(net)
params = list(net.parameters())
out = {"n_params": len(params), "conv1_size": list(params[0].size())}

input = randn(1, 1, 32, 32)
output = net(input)
out["out"] = output.tolist()
net.zero_grad()
output.backward(randn(1, 10))
out["conv1_weight_grad"] = net.conv1.weight.grad.sum().item()

output = net(input)
target = randn(10)  # a dummy target, for example
target = target.view(1, -1)  # make it the same shape as output
criterion = nn.MSELoss()
loss = criterion(output, target)
out["loss"] = loss.item()
print(loss.grad_fn)  # MSELoss
print(loss.grad_fn.next_functions[0][0])  # Linear
print(loss.grad_fn.next_functions[0][0].next_functions[0][0])  # ReLU

net.zero_grad()  # zeroes the gradient buffers of all parameters
out["bias_before"] = net.conv1.bias.grad
out["bias_before"] = [] if out["bias_before"] is None else out["bias_before"].tolist()
loss.backward()
out["bias_after"] = net.conv1.bias.grad.tolist()

learning_rate = 0.01
for f in net.parameters():
    f.data.sub_(f.grad.data * learning_rate)

# create your optimizer
optimizer = optim.SGD(net.parameters(), lr=0.01)
# in your training loop:
optimizer.zero_grad()  # zero the gradient buffers
output = net(input)
loss = criterion(output, target)
loss.backward()
optimizer.step()  # Does the update
out["loss_after"] = criterion(net(input), target).item()
out["fc3"] = net.fc3.weight.detach().tolist()
RESULT = out
