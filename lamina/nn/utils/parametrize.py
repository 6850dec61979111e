"""``torch.nn.utils.parametrize``: a tensor of a module computed from other tensors on each access.

``register_parametrization(module, "weight", P)`` moves the parameter to
``module.parametrizations.weight.original`` (or ``original0``, ``original1`` … when
``P.right_inverse`` returns several tensors) and makes ``module.weight`` a property that returns
``P(original)`` — so ``state_dict`` keys, gradients and optimizers see what torch's show. As torch,
the module's class is swapped for a subclass ``Parametrized<Name>`` carrying the property.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...autograd.grad_mode import no_grad
from ...autograd.tensor import Tensor
from ..modules.container import ModuleDict, ModuleList
from ..modules.module import Module
from ..parameter import Parameter

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized", "ParametrizationList"]


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, with the unconstrained ``original``(s)."""

    def __init__(self, modules: Sequence[Module], original: Tensor, unsafe: bool = False) -> None:
        super().__init__(modules)
        self.unsafe = unsafe
        new = original
        with no_grad():
            for m in reversed(list(modules)):
                if hasattr(m, "right_inverse"):
                    new = m.right_inverse(new)
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if not unsafe and (new.shape != original.shape or new.dtype != original.dtype):
                raise ValueError(f"When `right_inverse` outputs one tensor, it must have the same shape and dtype as "
                                 f"the original: got {tuple(new.shape)}, {new.dtype} for {tuple(original.shape)}, "
                                 f"{original.dtype}")
            original.array = new.detach().array.copy() if new is not original else original.array
            if isinstance(original, Parameter):
                self.original = original  # the same object: an optimizer built earlier still holds it
            else:
                self.register_buffer("original", original)
        else:
            for i, t in enumerate(new):
                self.register_parameter(f"original{i}", Parameter(t.detach().clone(), original.requires_grad))

    def right_inverse(self, value: Tensor) -> None:
        """Set the originals so that the parametrized tensor becomes ``value``."""
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    value = m.right_inverse(value)
            if self.is_tensor:
                self.original.array[...] = value.array
            else:
                for i, t in enumerate(value):
                    getattr(self, f"original{i}").array[...] = t.array

    def forward(self) -> Tensor:
        x = self[0](self.original) if self.is_tensor else self[0](*(getattr(self, f"original{i}")
                                                                    for i in range(self.ntensors)))
        for m in list(self)[1:]:
            x = m(x)
        return x


def _inject_property(module: Module, name: str) -> None:
    def getter(self: Module) -> Tensor:
        return self.parametrizations[name]()

    def setter(self: Module, value: Tensor) -> None:
        self.parametrizations[name].right_inverse(value)

    setattr(type(module), name, property(getter, setter))


def _inject_class(module: Module) -> None:
    cls = type(module)
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {"_lamina_original_class": cls})


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has a parametrization (on ``tensor_name``, when given)."""
    p = module.__dict__.get("_modules", {}).get("parametrizations")
    if p is None:
        return False
    return tensor_name is None or tensor_name in p._modules


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` be ``parametrization(original)`` (see the module docstring);
    a second call on the same name appends to the chain."""
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: expected a Module as the parametrization, got "
                        f"{type(parametrization).__name__}")
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        with no_grad():
            current = getattr(module, tensor_name)
            out = parametrization(current)
        if not unsafe and (out.shape != current.shape or out.dtype != current.dtype):
            raise ValueError(f"Registering a parametrization may not change the shape or dtype of the tensor: "
                             f"{tuple(current.shape)} -> {tuple(out.shape)}")
        plist.append(parametrization)
        return module
    if tensor_name in module._parameters or tensor_name in module._buffers:
        original = module._parameters.get(tensor_name, module._buffers.get(tensor_name))
    else:
        raise ValueError(f"Module '{module._get_name()}' does not have a parameter, a buffer, or a parametrized "
                         f"element with name '{tensor_name}'")
    if not unsafe:
        with no_grad():
            out = parametrization(original)
        if not isinstance(out, Tensor):
            raise ValueError(f"A parametrization must return a tensor. Got {type(out).__name__}.")
        if out.shape != original.shape or out.dtype != original.dtype:
            raise ValueError(f"Registering a parametrization may not change the shape or dtype of the tensor: "
                             f"{tuple(original.shape)}, {original.dtype} -> {tuple(out.shape)}, {out.dtype}")
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    module._parameters.pop(tensor_name, None)
    module._buffers.pop(tensor_name, None)
    if not is_parametrized(module):
        _inject_class(module)
        module.parametrizations = ModuleDict()
    module.parametrizations[tensor_name] = plist
    _inject_property(module, tensor_name)
    return module


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Undo :func:`register_parametrization`: ``tensor_name`` becomes a plain parameter again, holding
    the parametrized value (``leave_parametrized``) or the original."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module._get_name()} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    with no_grad():
        if leave_parametrized:
            value = plist()
        elif plist.is_tensor:
            value = plist.original
        else:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is "
                             "parametrized in terms of a sequence of tensors.")
    if plist.is_tensor:
        param = plist.original
        param.array = value.detach().array.copy() if value is not param else param.array
    else:
        param = Parameter(value.detach().clone(), plist.original0.requires_grad)
    delattr(type(module), tensor_name)
    del module.parametrizations._modules[tensor_name]
    module.register_parameter(tensor_name, param)
    if not module.parametrizations._modules:
        del module._modules["parametrizations"]
        module.__class__ = module.__class__._lamina_original_class
    return module
