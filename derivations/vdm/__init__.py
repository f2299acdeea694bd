"""Variational diffusion models (paper section 2.1, eqs. (30)-(100)): SymPy derivations.

One module per sub-part, in paper order:

* `udm.derivations.vdm.elbo`: the forward and reverse processes (eqs. (30)-(33)) and both ELBO
  derivations on 1-D Gaussian data with a linear-Gaussian reverse model (eqs. (34)-(58));
* `udm.derivations.vdm.forward`: q(x_t | x_0) by induction over t (eqs. (59)-(70));
* `udm.derivations.vdm.posterior`: q(x_{t-1} | x_t, x_0) by completing the square (eqs. (71)-(85));
* `udm.derivations.vdm.objective`: the Gaussian KL (eq. (86)) and the denoising objective in its
  x_0 form (eqs. (87)-(100));
* `udm.derivations.vdm.schedules`: the named noise schedules and their coefficients in log space.

Importing this package registers all of them; their public names are available here too.
"""

from udm.derivations.vdm.elbo import *  # noqa: F403
from udm.derivations.vdm.forward import *  # noqa: F403
from udm.derivations.vdm.objective import *  # noqa: F403
from udm.derivations.vdm.posterior import *  # noqa: F403
from udm.derivations.vdm.schedules import *  # noqa: F403
