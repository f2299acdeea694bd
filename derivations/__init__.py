"""Layer 1: SymPy derivations of the paper's equations, one module per section.

Each registered function builds a `udm.derivations.core.Derivation` whose steps the machine
checks; its `results` are the closed forms that `reference/_generated/` is generated from.
"""
