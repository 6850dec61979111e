# pytorch/examples vae/main.py (VAE, loss_function, train/test loops) with 784 -> 40 -> 4 instead of
# 784 -> 400 -> 20, on 8 synthetic images in [0, 1]. The reparameterization's noise is torch.randn_like
# in the original; each library's generator draws differently, so eps comes from seeded NumPy and is
# handed in (the one changed line in reparameterize). Initial weights: seeded NumPy.
import numpy as np
import torch
import torch.utils.data
from torch import nn, optim
from torch.nn import functional as F

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
rng = np.random.default_rng(0)


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()

        self.fc1 = nn.Linear(784, 40)
        self.fc21 = nn.Linear(40, 4)
        self.fc22 = nn.Linear(40, 4)
        self.fc3 = nn.Linear(4, 40)
        self.fc4 = nn.Linear(40, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5*logvar)
        eps = torch.from_numpy(rng.standard_normal(tuple(std.shape)).astype(np.float32))  # was randn_like(std)
        return mu + eps*std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


model = VAE().to(device)
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.from_numpy((rng.standard_normal(tuple(p.shape)) * 0.05).astype(np.float32)))
optimizer = optim.Adam(model.parameters(), lr=1e-3)


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')

    # see Appendix B from VAE paper:
    # Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    return BCE + KLD


# data source: seeded NumPy instead of torchvision's MNIST
images = torch.from_numpy(rng.random((8, 1, 28, 28)).astype(np.float32))
train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(8)), batch_size=4)
test_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images[:4], torch.zeros(4)), batch_size=4)


def train(epoch):
    model.train()
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    return train_loss / len(train_loader.dataset)


def test(epoch):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n], recon_batch.view(4, 1, 28, 28)[:n]])
    test_loss /= len(test_loader.dataset)
    return test_loss, comparison


history = []
for epoch in range(1, 3):
    history.append([train(epoch), test(epoch)[0]])
    with torch.no_grad():
        sample = torch.from_numpy(rng.standard_normal((2, 4)).astype(np.float32)).to(device)  # was torch.randn
        sample = model.decode(sample).cpu()
RESULT = {"history": history, "sample": sample.view(2, 1, 28, 28)[:, 0, 10, :].tolist()}
