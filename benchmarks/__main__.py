"""`python -m benchmarks`: see `benchmarks.main`."""

import sys

from benchmarks import main

sys.exit(main())
