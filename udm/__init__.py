"""udm: the spine shared by the three layers (catalog, equation registry, command line).

Importing this package imports no layer; `udm.registry.register` is the decorator that
every formula function in `derivations/`, `reference/` and `torch_impl/` carries.
"""

from udm.registry import register

__all__ = ["register"]
__version__ = "0.1.0"
