"""Layer 2: NumPy/SciPy float64 reference, generated from the derivations (never imports torch).

Every formula function takes the paper's quantities as keyword arguments named as in
NOTATION.md, e.g. ``udm.reference.vdm.q_var(alpha_bar_t=0.5)``.
"""
