# The 60-minute blitz's "Tensors" and "A Gentle Introduction to torch.autograd" tutorials, their
# tensor operations, NumPy bridge and autograd examples in order; data that the tutorials draw with
# torch.rand/torch.ones_like come from seeded NumPy (the two libraries' generators differ).
import numpy as np
import torch

out = {}
data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)
np_array = np.array(data)
x_np = torch.from_numpy(np_array)
x_ones = torch.ones_like(x_data)  # retains the properties of x_data
x_rand = torch.from_numpy(np.random.default_rng(0).random((2, 2)).astype(np.float32))  # was rand_like
out["ones_like"] = x_ones.tolist()
out["dtypes"] = ",".join(str(t.dtype).split(".")[-1] for t in (x_data, x_np, x_ones, x_rand))

shape = (2, 3,)
out["ones"], out["zeros"] = torch.ones(shape).tolist(), torch.zeros(shape).tolist()
tensor = torch.from_numpy(np.random.default_rng(1).random((3, 4)).astype(np.float32))
out["shape"], out["dtype"], out["device"] = list(tensor.shape), str(tensor.dtype).split(".")[-1], str(tensor.device)

if torch.accelerator.is_available():
    tensor = tensor.to(torch.accelerator.current_accelerator())

tensor = torch.ones(4, 4)
out["first_row"] = tensor[0].tolist()
out["first_column"] = tensor[:, 0].tolist()
out["last_column"] = tensor[..., -1].tolist()
tensor[:, 1] = 0
t1 = torch.cat([tensor, tensor, tensor], dim=1)
out["cat"] = t1.tolist()

# arithmetic: three ways to a matrix product and to an elementwise product
y1 = tensor @ tensor.T
y2 = tensor.matmul(tensor.T)
y3 = torch.rand_like(y1)
torch.matmul(tensor, tensor.T, out=y3)
z1 = tensor * tensor
z2 = tensor.mul(tensor)
z3 = torch.rand_like(tensor)
torch.mul(tensor, tensor, out=z3)
out["products"] = [y1.tolist(), y2.tolist(), y3.tolist(), z1.tolist(), z2.tolist(), z3.tolist()]
agg = tensor.sum()
agg_item = agg.item()
out["agg"] = [agg_item, float(type(agg_item) is float)]
tensor.add_(5)
out["add_"] = tensor.tolist()

# bridge with NumPy: the tensor and the array share memory
t = torch.ones(5)
n = t.numpy()
t.add_(1)
out["bridge_t_to_n"] = n.tolist()
n = np.ones(5)
t = torch.from_numpy(n)
np.add(n, 1, out=n)
out["bridge_n_to_t"] = t.tolist()

# autograd: Q = 3a^3 - b^2, dQ/da = 9a^2, dQ/db = -2b
a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)
Q = 3*a**3 - b**2
external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)
out["check"] = [float(bool((9*a**2 == a.grad).all())), float(bool((-2*b == b.grad).all()))]
out["grads"] = [a.grad.tolist(), b.grad.tolist()]

x = torch.from_numpy(np.random.default_rng(2).random((5, 5)).astype(np.float32))
y = torch.from_numpy(np.random.default_rng(3).random((5, 5)).astype(np.float32))
z = torch.from_numpy(np.random.default_rng(4).random((5, 5)).astype(np.float32)).requires_grad_(True)
a = x + y
out["requires_grad"] = [float(a.requires_grad), float((x + z).requires_grad)]
with torch.no_grad():
    out["no_grad"] = float((x + z).requires_grad)
RESULT = out
