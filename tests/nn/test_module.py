"""The Module system: registration, traversal, modes, state_dict, hooks, containers, reprs."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

import lamina
from lamina import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 6))
        self.head = nn.Linear(6, 3)
        self.register_buffer("steps", lamina.zeros(1))
        self.register_buffer("cache", lamina.zeros(2), persistent=False)
        self.scale = nn.Parameter(lamina.ones(1))

    def forward(self, x):
        return self.head(self.features(x).relu()) * self.scale


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 6))
        self.head = torch.nn.Linear(6, 3)
        self.register_buffer("steps", torch.zeros(1))
        self.register_buffer("cache", torch.zeros(2), persistent=False)
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.head(self.features(x).relu()) * self.scale


def test_names_match_torch_and_torch_state_dict_loads():
    net, tnet = Net(), TorchNet()
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert [n for n, _ in net.named_buffers()] == [n for n, _ in tnet.named_buffers()]
    assert [n for n, _ in net.named_modules()] == [n for n, _ in tnet.named_modules()]
    assert [n for n, _ in net.named_children()] == [n for n, _ in tnet.named_children()]
    res = net.load_state_dict(tnet.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    xl, xt = lamina.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yl, yt = net(xl), tnet(xt)
    np.testing.assert_allclose(yl.detach().array, yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    yl.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xl.grad.array, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    for (n, p), (_, q) in zip(net.named_parameters(), tnet.named_parameters()):
        np.testing.assert_allclose(p.grad.array, q.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=n)


def test_load_state_dict_errors_list_keys_and_shapes():
    net = Net()
    sd = net.state_dict()
    sd["extra.weight"] = lamina.ones(1)
    del sd["head.bias"]
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "head.bias"' in msg and 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.bias"] and res.unexpected_keys == ["extra.weight"]
    bad = net.state_dict()
    bad["head.weight"] = lamina.ones(2, 2)
    with pytest.raises(RuntimeError, match=r"size mismatch for head.weight: copying a param with shape \(2, 2\) from checkpoint, the shape in current model is \(3, 6\)"):
        net.load_state_dict(bad)


def test_state_dict_is_detached_and_load_copies_values():
    net = Net()
    sd = net.state_dict()
    assert all(not t.requires_grad for t in sd.values())
    other = Net()
    other.load_state_dict(sd)
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v.array, sd[k].array)
    # loading copies: changing the source afterwards does not touch the model
    sd["head.bias"].array[...] = 123
    assert not np.any(other.head.bias.array == 123)


def test_train_eval_zero_grad_requires_grad_apply_to():
    net = Net()
    assert net.training and net.features[0].training
    net.eval()
    assert not net.training and not net.features[1].training
    net.train()
    net(lamina.randn(2, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    names = []
    net.apply(lambda m: names.append(type(m).__name__))
    assert names[-1] == "Net" and names.count("Linear") == 3
    net.double()
    assert all(p.dtype == lamina.float64 for p in net.parameters()) and net.steps.dtype == lamina.float64
    assert net(lamina.randn(2, 4, dtype=lamina.float64)).dtype == lamina.float64


def test_attribute_assignment_rules():
    m = nn.Module()
    m.w = nn.Parameter(lamina.ones(2))
    m.sub = nn.Linear(2, 2)
    m.plain = 3
    assert list(dict(m.named_parameters())) == ["w", "sub.weight", "sub.bias"]
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = lamina.ones(2)
    m.w = None
    assert "w" not in dict(m.named_parameters())
    del m.sub
    assert list(m.children()) == []
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nothing'"):
        m.nothing
    with pytest.raises(KeyError, match="buffer name can"):
        m.register_buffer("a.b", lamina.ones(1))
    with pytest.raises(RuntimeError, match="Linear"):
        nn.Linear(2, 2).load_state_dict({})


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.named_modules())) == 3


def test_forward_pre_hooks_and_forward_hooks():
    lin = nn.Linear(2, 2)
    seen = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: seen.append(out.shape) or out + 1)
    y = lin(lamina.ones(3, 2))
    np.testing.assert_allclose(y.array, np.broadcast_to(lin.bias.array + 1, (3, 2)), rtol=1e-6)
    assert seen == [(3, 2)]
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(lin(lamina.ones(1, 2)).array, (lin.weight.array.sum(1) + lin.bias.array)[None], rtol=1e-6)


def test_full_backward_hook_matches_torch():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    lm = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    lm.load_state_dict(tm.state_dict())
    records = {"l": [], "t": []}
    lm[1].register_full_backward_hook(lambda m, gi, go: records["l"].append((gi[0].array.copy(), go[0].array.copy())))
    tm[1].register_full_backward_hook(lambda m, gi, go: records["t"].append((gi[0].numpy().copy(), go[0].numpy().copy())))
    # a hook may replace grad_input: double it in the last layer
    lm[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * 2,))
    tm[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * 2,))
    x = np.random.default_rng(1).standard_normal((5, 3))
    xl, xt = lamina.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lm(xl).sum().backward()
    tm(xt).sum().backward()
    (gil, gol), (git, got) = records["l"][0], records["t"][0]
    np.testing.assert_allclose(gil, git, rtol=1e-12)
    np.testing.assert_allclose(gol, got, rtol=1e-12)
    np.testing.assert_allclose(xl.grad.array, xt.grad.numpy(), rtol=1e-12)


def test_backward_hook_on_first_layer_with_data_input():
    lin = nn.Linear(2, 1)
    got = []
    lin.register_full_backward_hook(lambda m, gi, go: got.append((gi, go)))
    lin(lamina.ones(4, 2)).sum().backward()
    assert len(got) == 1 and got[0][0] == (None,) and got[0][1][0].shape == (4, 1)


def test_sequential_and_lists_like_torch():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    tseq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    assert repr(seq) == repr(tseq)
    assert repr(seq[1:]) == repr(tseq[1:]) and len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and list(seq._modules) == ["0", "1", "2", "3"]
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and isinstance(seq[1], nn.Linear)
    od = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(dict(od.named_parameters())) == ["fc.weight", "fc.bias"] and od.fc is od[0]
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    ml.append(nn.Linear(1, 2))
    assert len(ml) == 4 and len(list(ml.parameters())) == 8 and ml[-1].out_features == 2
    md = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    assert list(md.keys()) == ["a", "b"] and "a" in md and len(list(md.parameters())) == 2
    pl = nn.ParameterList([lamina.ones(2), lamina.zeros(3)])
    assert len(pl) == 2 and [n for n, _ in pl.named_parameters()] == ["0", "1"]
    assert repr(nn.Identity()) == "Identity()" and nn.Flatten()(lamina.ones(2, 3, 4)).shape == (2, 12)
    assert nn.Unflatten(1, (3, 4))(lamina.ones(2, 12)).shape == (2, 3, 4)
    assert repr(nn.Flatten()) == repr(torch.nn.Flatten()) and repr(nn.Unflatten(1, (3, 4))) == repr(torch.nn.Unflatten(1, (3, 4)))


def test_nested_repr_matches_torch():
    assert repr(Net()).replace("Net", "X") == repr(TorchNet()).replace("TorchNet", "X")


def test_parameter_repr_and_identity():
    p = nn.Parameter(lamina.tensor([1.0, 2.0]))
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert p.is_leaf and p.requires_grad
    assert isinstance(nn.Parameter(lamina.ones(1), requires_grad=False), nn.Parameter)
