"""Device boilerplate from real PyTorch scripts runs on lamina and tells the truth (no GPU)."""

import pickle
import warnings

import numpy as np
import pytest
import torch

import lamina
from lamina.utils.data import DataLoader, TensorDataset, random_split

NO_GPU = "lamina has no GPU backend"


def test_cuda_queries_say_no_gpu_as_torch_without_one():
    assert lamina.cuda.is_available() is torch.cuda.is_available() is False
    assert lamina.cuda.device_count() == torch.cuda.device_count() == 0
    assert lamina.cuda.manual_seed_all(0) is None and lamina.cuda.manual_seed(0) is None
    assert lamina.cuda.memory_allocated() == 0 and lamina.cuda.is_initialized() is False
    assert issubclass(lamina.cuda.OutOfMemoryError, RuntimeError)
    for fn in (lamina.cuda.synchronize, lamina.cuda.current_device, lamina.cuda.get_device_name):
        with pytest.raises(RuntimeError, match=NO_GPU):
            fn()
    device = lamina.device("cuda" if lamina.cuda.is_available() else "cpu")
    assert device == lamina.device("cpu") and str(device) == "cpu"


def test_accelerator_and_backend_flags():
    assert lamina.accelerator.is_available() is False and lamina.accelerator.current_accelerator() is None
    assert lamina.accelerator.device_count() == 0
    assert lamina.backends.cudnn.is_available() is False and lamina.backends.mps.is_available() is False
    assert lamina.backends.mps.is_built() is False
    for name in ("benchmark", "deterministic", "enabled"):
        assert getattr(lamina.backends.cudnn, name) == getattr(torch.backends.cudnn, name)
    old = lamina.backends.cudnn.benchmark
    lamina.backends.cudnn.benchmark = True  # scripts set it; it changes nothing
    lamina.backends.cudnn.benchmark = old
    lamina.backends.cuda.matmul.allow_tf32 = True


@pytest.mark.parametrize("move", [
    lambda x: x.cuda(), lambda x: x.cuda(0), lambda x: x.to("cuda"), lambda x: x.to("cuda:1"),
    lambda x: x.to(lamina.device("cuda", 0)), lambda x: x.to(device="mps"), lambda x: x.to("cuda", lamina.float64),
    lambda x: lamina.tensor([1.0], device="cuda"),
])
def test_moving_a_tensor_to_a_gpu_is_one_clear_error(move):
    with pytest.raises(RuntimeError, match=NO_GPU):
        move(lamina.ones(2))


@pytest.mark.parametrize("move", [lambda m: m.cuda(), lambda m: m.to("cuda"), lambda m: m.to(device="cuda:0")])
def test_moving_a_module_to_a_gpu_is_the_same_error(move):
    with pytest.raises(RuntimeError, match=NO_GPU):
        move(lamina.nn.Linear(2, 2))


def test_cpu_moves_and_device_names_as_torch():
    x = lamina.ones(2)
    assert x.to("cpu") is x and x.cpu() is x and x.to(lamina.device("cpu")) is x
    assert x.is_cuda is False and x.is_xpu is False and x.is_mps is False and x.is_cpu is True
    assert x.device == lamina.device("cpu") and x.get_device() == torch.ones(2).get_device() == -1
    assert repr(lamina.device("cuda", 0)) == repr(torch.device("cuda", 0)).replace("torch.", "")
    assert str(lamina.device("cuda:1")) == str(torch.device("cuda:1")) == "cuda:1"
    assert lamina.device("cuda:0") != lamina.device("cuda")  # as torch: index None differs from 0
    assert (torch.device("cuda:0") != torch.device("cuda"))
    with pytest.raises(ValueError, match="device"):
        lamina.device("gpu")


def test_channels_last_gives_torchs_strides_and_the_same_numbers():
    a = np.random.default_rng(0).standard_normal((2, 3, 5, 6))
    x = lamina.tensor(a, requires_grad=True)
    y = x.to(memory_format=lamina.channels_last)
    t = torch.tensor(a).to(memory_format=torch.channels_last)
    assert y.stride() == t.stride() and y.shape == tuple(t.shape)
    assert y.is_contiguous(memory_format=lamina.channels_last) and not y.is_contiguous()
    assert x.contiguous(memory_format=lamina.channels_last).stride() == t.stride()
    conv = lamina.nn.Conv2d(3, 4, 3).double()
    ref = conv(x).detach().numpy().copy()
    conv.to(memory_format=lamina.channels_last)
    assert conv.weight.stride() == torch.zeros(4, 3, 3, 3).to(memory_format=torch.channels_last).stride()
    assert conv.bias.stride() == (1,)
    out = conv(y)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-12)
    out.sum().backward()  # the gradient reaches x through the layout change
    assert x.grad.shape == x.shape and conv.weight.grad.shape == conv.weight.shape
    lamina.optim.SGD(conv.parameters(), lr=0.1, momentum=0.9).step()
    with pytest.raises(RuntimeError, match="rank 4"):
        lamina.ones(2, 3).to(memory_format=lamina.channels_last)


def test_autocast_on_cpu_runs_in_lamina_dtypes_and_says_so_once():
    x = lamina.ones(2, 2)
    with pytest.warns(UserWarning, match="no mixed precision"):
        with lamina.autocast("cpu", dtype=lamina.bfloat16):
            assert (x @ x).dtype == lamina.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time: no warning
        with lamina.autocast("cpu", dtype=lamina.bfloat16):
            pass
        with lamina.autocast("cpu", enabled=False):
            pass
    with pytest.warns(UserWarning, match=NO_GPU):
        with lamina.autocast("cuda"):
            assert (x @ x).dtype == lamina.float32
    with pytest.warns(UserWarning, match=NO_GPU):
        with lamina.cuda.amp.autocast():
            pass
    with pytest.raises(TypeError, match="no bfloat16 kernels"):
        lamina.ones(2, dtype=lamina.bfloat16)


def _grads(model):
    return [p.grad.numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("make", [lambda: lamina.cuda.amp.GradScaler(), lambda: lamina.amp.GradScaler()])
def test_gradscaler_for_cuda_warns_and_passes_through(make):
    with pytest.warns(UserWarning, match="Disabling"):
        scaler = make()
    assert scaler.is_enabled() is False and scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    lamina.manual_seed(0)
    model = lamina.nn.Linear(3, 1)
    opt = lamina.optim.SGD(model.parameters(), lr=0.1)
    before = model.weight.detach().numpy().copy()
    loss = model(lamina.ones(4, 3)).sum()
    scaled = scaler.scale(loss)
    assert scaled is loss
    scaled.backward()
    g = model.weight.grad.numpy().copy()
    scaler.step(opt)
    scaler.update()
    np.testing.assert_allclose(model.weight.detach().numpy(), before - 0.1 * g, rtol=1e-6)


def test_gradscaler_on_cpu_scales_unscales_and_skips_inf_steps_as_torch():
    def run(lib, scaler, x):
        lib.manual_seed(0)
        w = lib.nn.Parameter(lib.tensor([[0.5, -1.0, 2.0]], dtype=lib.float64))
        opt = lib.optim.SGD([w], lr=0.1)
        scaled = scaler.scale((w * x).sum())
        scaled.backward()
        grad_scaled = w.grad.tolist()
        scaler.step(opt)
        scaler.update()
        return scaled.item(), grad_scaled, w.tolist(), scaler.get_scale()

    for x in ([1.0, 2.0, 3.0], [1.0, float("inf"), 3.0]):
        ours = run(lamina, lamina.amp.GradScaler("cpu", init_scale=8.0, growth_interval=1),
                   lamina.tensor(x, dtype=lamina.float64))
        theirs = run(torch, torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=1),
                     torch.tensor(x, dtype=torch.float64))
        assert ours == pytest.approx(theirs, nan_ok=True) if np.isfinite(x).all() else ours[2:] == theirs[2:]
    s = lamina.amp.GradScaler("cpu")
    opt = lamina.optim.SGD([lamina.nn.Parameter(lamina.ones(1))], lr=1.0)
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        s.unscale_(opt)


def test_inference_mode_records_no_graph_as_decorator_too():
    x = lamina.ones(2, requires_grad=True)
    with lamina.inference_mode():
        assert lamina.is_inference_mode_enabled() and not (x * 2).requires_grad
    assert not lamina.is_inference_mode_enabled() and (x * 2).requires_grad
    with lamina.inference_mode(False):
        assert (x * 2).requires_grad

    @lamina.inference_mode()
    def f(t):
        return t * 2

    @lamina.inference_mode
    def g(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad and lamina.is_grad_enabled()


def test_data_parallel_passes_through_with_torchs_state_dict_keys():
    inner = lamina.nn.Linear(2, 3)
    m = lamina.nn.DataParallel(inner)
    tm = torch.nn.DataParallel(torch.nn.Linear(2, 3))
    assert list(m.state_dict()) == list(tm.state_dict()) and m.module is inner and m.device_ids == tm.device_ids
    x = lamina.randn(4, 2)
    np.testing.assert_array_equal(m(x).detach().numpy(), inner(x).detach().numpy())
    assert lamina.nn.parallel.DataParallel is lamina.nn.DataParallel
    with pytest.raises(RuntimeError, match=NO_GPU):
        lamina.nn.DataParallel(inner, device_ids=[0, 1])


def test_generator_seeds_dataloader_and_random_split_reproducibly():
    g = lamina.Generator().manual_seed(42)
    assert g.initial_seed() == 42 and lamina.Generator().initial_seed() == torch.Generator().initial_seed()
    ds = TensorDataset(lamina.arange(10))
    a = [b[0].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, generator=lamina.Generator().manual_seed(1))]
    b = [b[0].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, generator=lamina.Generator().manual_seed(1))]
    c = [b[0].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, generator=lamina.Generator().manual_seed(2))]
    assert a == b != c and sorted(sum(a, [])) == list(range(10))
    s1 = random_split(range(10), [0.7, 0.3], generator=lamina.Generator().manual_seed(0))
    s2 = random_split(range(10), [0.7, 0.3], generator=lamina.Generator().manual_seed(0))
    assert [list(s.indices) for s in s1] == [list(s.indices) for s in s2] and len(s1[0]) == 7
    state = g.get_state()
    first = g.random()
    assert g.set_state(state).random() == first
    h = pickle.loads(pickle.dumps(g))  # as DataLoader workers receive it
    assert h.random() == g.random() and h.initial_seed() == 42
