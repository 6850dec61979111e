# The 60-minute blitz's "Training a classifier" (CIFAR-10 net), with synthetic data.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
torch.backends.cudnn.benchmark = True


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


# data source: seeded NumPy instead of torchvision's CIFAR-10, and NumPy-drawn initial weights
rng = np.random.default_rng(0)
images = torch.from_numpy(rng.standard_normal((16, 3, 32, 32)).astype(np.float32))
labels = torch.from_numpy(rng.integers(0, 10, 16))
trainloader = DataLoader(TensorDataset(images, labels), batch_size=4, shuffle=False)
net = Net()
with torch.no_grad():
    for p in net.parameters():
        p.copy_(torch.from_numpy((rng.standard_normal(tuple(p.shape)) * 0.1).astype(np.float32)))
net.to(device)

criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
losses = []
for epoch in range(2):
    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        inputs, targets = data[0].to(device), data[1].to(device)
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    losses.append(running_loss)

correct = total = 0
with torch.no_grad():
    for inputs, targets in trainloader:
        _, predicted = torch.max(net(inputs), 1)
        total += targets.size(0)
        correct += (predicted == targets).sum().item()
RESULT = {"losses": losses, "accuracy": correct / total, "fc3": net.fc3.weight.detach().cpu().numpy().tolist()}
