"""`python -m runs.bench`: see runs/bench/__init__.py."""

import sys

from runs.bench import main

sys.exit(main())
