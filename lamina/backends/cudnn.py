"""``lamina.backends.cudnn``: unavailable; its flags are torch's defaults and change nothing."""

__all__ = ["is_available", "version", "enabled", "benchmark", "deterministic", "allow_tf32"]

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """False: lamina has no cuDNN."""
    return False


def version() -> None:
    """None: no cuDNN is loaded."""
    return None
