"""Variational diffusion models (paper section 2.1, eqs. (30)-(100)): SymPy derivations.

One module per sub-part, in paper order:

* `derivations.vdm.elbo`: the forward and reverse processes (eqs. (30)-(33)) and both ELBO
  derivations on 1-D Gaussian data with a linear-Gaussian reverse model (eqs. (34)-(58));
* `derivations.vdm.forward`: q(x_t | x_0) by induction over t (eqs. (59)-(70));
* `derivations.vdm.posterior`: q(x_{t-1} | x_t, x_0) by completing the square (eqs. (71)-(85));
* `derivations.vdm.objective`: the Gaussian KL (eq. (86)) and the denoising objective in its
  x_0 form (eqs. (87)-(100));
* `derivations.vdm.schedules`: the named noise schedules and their coefficients in log space.

Importing this package registers all of them; their public names are available here too.
"""

from derivations.vdm.elbo import *  # noqa: F403
from derivations.vdm.forward import *  # noqa: F403
from derivations.vdm.objective import *  # noqa: F403
from derivations.vdm.posterior import *  # noqa: F403
from derivations.vdm.schedules import *  # noqa: F403
