# The gradient penalty of a WGAN-GP critic (Gulrajani et al.), as commonly written.
import numpy as np
import torch
import torch.autograd as autograd
import torch.nn as nn

cuda = True if torch.cuda.is_available() else False
Tensor = torch.cuda.FloatTensor if cuda else torch.FloatTensor

critic = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2, inplace=True), nn.Linear(16, 1))
rng = np.random.default_rng(0)  # data source: seeded NumPy
with torch.no_grad():
    for p in critic.parameters():
        p.copy_(torch.from_numpy((rng.standard_normal(tuple(p.shape)) * 0.3).astype(np.float32)))
if cuda:
    critic.cuda()
optimizer = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))


def compute_gradient_penalty(D, real_samples, fake_samples, alpha):
    interpolates = (alpha * real_samples + ((1 - alpha) * fake_samples)).requires_grad_(True)
    d_interpolates = D(interpolates)
    fake = Tensor(real_samples.shape[0], 1).fill_(1.0)
    gradients = autograd.grad(outputs=d_interpolates, inputs=interpolates, grad_outputs=fake,
                              create_graph=True, retain_graph=True, only_inputs=True)[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean()


losses = []
for step in range(3):
    real = Tensor(rng.standard_normal((6, 8)).astype(np.float32))
    fake = Tensor(rng.standard_normal((6, 8)).astype(np.float32))
    alpha = Tensor(rng.random((6, 1)).astype(np.float32))
    optimizer.zero_grad()
    gp = compute_gradient_penalty(critic, real.data, fake.data, alpha)
    d_loss = -torch.mean(critic(real)) + torch.mean(critic(fake)) + 10 * gp
    d_loss.backward()
    optimizer.step()
    losses.append([d_loss.item(), gp.item()])
RESULT = {"losses": losses, "w": critic[0].weight.detach().numpy().tolist()}
