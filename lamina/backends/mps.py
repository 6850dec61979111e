"""``lamina.backends.mps``: Apple's Metal backend, neither built nor available in lamina."""

__all__ = ["is_available", "is_built"]


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False
