# kuangliu/pytorch-cifar main.py (SGD + CosineAnnealingLR, train/test, best-accuracy checkpoint and
# --resume) with its models/resnet.py BasicBlock in a two-stage ResNet of widths 8/16, on 8 synthetic
# 16x16 images and NumPy-drawn initial weights. Changed beyond the data source: the checkpoint goes to a
# temporary folder instead of ./checkpoint, the script's body runs twice (fresh, then --resume), and the
# DataParallel wrap is taken unconditionally (the original takes it when device == 'cuda') so that its
# one-device pass-through and the 'module.' keys it gives the state_dict are compared too.
import os
import shutil
import tempfile

import numpy as np
import torch
import torch.backends.cudnn as cudnn
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super(BasicBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion*planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion*planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion*planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10):
        super(ResNet, self).__init__()
        self.in_planes = 8

        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = self._make_layer(block, 8, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 16, num_blocks[1], stride=2)
        self.linear = nn.Linear(16*block.expansion, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1]*(num_blocks-1)
        layers = []
        for stride in strides:
            layers.append(block(self.in_planes, planes, stride))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = F.avg_pool2d(out, 8)
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


rng = np.random.default_rng(0)  # data source and initial weights: seeded NumPy
images = torch.from_numpy(rng.standard_normal((8, 3, 16, 16)).astype(np.float32))
labels = torch.from_numpy(rng.integers(0, 10, 8))
trainloader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=4)
testloader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=8)
init = {}
checkpoint_dir = tempfile.mkdtemp()


def main(resume, epochs):
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    best_acc = 0  # best test accuracy
    start_epoch = 0  # start from epoch 0 or last checkpoint epoch

    net = ResNet(BasicBlock, [1, 1])
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name not in init:
                init[name] = (rng.standard_normal(tuple(p.shape)) * 0.2).astype(np.float32)
            p.copy_(torch.from_numpy(init[name]))
    net = net.to(device)
    net = torch.nn.DataParallel(net)
    if device == 'cuda':
        cudnn.benchmark = True

    if resume:
        # Load checkpoint.
        assert os.path.isdir(checkpoint_dir), 'Error: no checkpoint directory found!'
        checkpoint = torch.load(os.path.join(checkpoint_dir, 'ckpt.pth'))
        net.load_state_dict(checkpoint['net'])
        best_acc = checkpoint['acc']
        start_epoch = checkpoint['epoch']

    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)
    log = []

    def train(epoch):
        net.train()
        train_loss = 0
        correct = 0
        total = 0
        for batch_idx, (inputs, targets) in enumerate(trainloader):
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()

            train_loss += loss.item()
            _, predicted = outputs.max(1)
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()
        log.append([train_loss/(batch_idx+1), 100.*correct/total])

    def test(epoch):
        nonlocal best_acc
        net.eval()
        test_loss = 0
        correct = 0
        total = 0
        with torch.no_grad():
            for batch_idx, (inputs, targets) in enumerate(testloader):
                inputs, targets = inputs.to(device), targets.to(device)
                outputs = net(inputs)
                loss = criterion(outputs, targets)

                test_loss += loss.item()
                _, predicted = outputs.max(1)
                total += targets.size(0)
                correct += predicted.eq(targets).sum().item()
        log.append([test_loss/(batch_idx+1), 100.*correct/total])

        # Save checkpoint.
        acc = 100.*correct/total
        if acc > best_acc:
            state = {
                'net': net.state_dict(),
                'acc': acc,
                'epoch': epoch,
            }
            torch.save(state, os.path.join(checkpoint_dir, 'ckpt.pth'))
            best_acc = acc

    for epoch in range(start_epoch, start_epoch+epochs):
        train(epoch)
        test(epoch)
        scheduler.step()
    return log, best_acc, start_epoch, sorted(net.state_dict())[:3], net.module.linear.weight.detach().tolist()


first = main(resume=False, epochs=2)
second = main(resume=True, epochs=1)
shutil.rmtree(checkpoint_dir)
RESULT = {"log": first[0] + second[0], "best_acc": [first[1], second[1]], "start_epoch": second[2],
          "keys": ",".join(second[3]), "linear": second[4]}
