"""``lamina.vision.ops``: ``torchvision.ops`` in lamina — same names, signatures and semantics.

Each op has a plain-loop reference beside its fast kernel (the test oracle and the text to
read); the docstrings link them.
"""

__all__: list[str] = []
