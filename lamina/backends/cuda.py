"""``lamina.backends.cuda``: torch's CUDA flags (``matmul.allow_tf32`` …); settable, they change nothing."""

__all__ = ["matmul", "is_built"]


class _MatmulFlags:
    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()


def is_built() -> bool:
    """False: lamina has no CUDA."""
    return False
