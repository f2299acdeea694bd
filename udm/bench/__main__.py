"""`python -m udm.bench`: see `udm.bench.main`."""

import sys

from udm.bench import main

sys.exit(main())
