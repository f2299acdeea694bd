"""v-prediction (Salimans and Ho 2022): float64 reference, generated from derivations/vpred.py.

The conversions are udm.reference.interpretations.x_0_from_v / eps_from_v (v.x0, v.eps).
"""

from udm.reference._generated.vpred import (  # noqa: F401
    v_loss_weight_eps,
    v_loss_weight_x0,
    v_target,
)
