"""Layer 3: PyTorch, batched and device-agnostic (never imports sympy).

Functions take the paper's names as keyword arguments; device and dtype follow the inputs.
"""
