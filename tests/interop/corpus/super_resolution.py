# pytorch/examples super_resolution (ESPCN with pixel shuffle), one short run on synthetic images.
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim


class Net(nn.Module):
    def __init__(self, upscale_factor):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 16, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(16, 16, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(16, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.pixel_shuffle(self.conv3(x))


device = torch.device("mps" if torch.backends.mps.is_available() else "cpu")
model = Net(upscale_factor=2).to(device)
rng = np.random.default_rng(0)  # data source and initial weights: seeded NumPy
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.from_numpy((rng.standard_normal(tuple(p.shape)) * 0.1).astype(np.float32)))
criterion = nn.MSELoss()
optimizer = optim.Adam(model.parameters(), lr=0.01)
low = torch.from_numpy(rng.random((2, 1, 8, 8)).astype(np.float32))
high = torch.from_numpy(rng.random((2, 1, 16, 16)).astype(np.float32))
losses = []
for epoch in range(4):
    optimizer.zero_grad()
    loss = criterion(model(low.to(device)), high.to(device))
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
model.eval()
with torch.inference_mode():
    psnr = 10 * np.log10(1 / criterion(model(low), high).item())
RESULT = {"losses": losses, "psnr": psnr}
