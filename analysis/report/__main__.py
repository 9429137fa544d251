"""`python -m analysis.report RUNS_DIR`: see analysis/report/__init__.py."""

import sys

from analysis.report import main

sys.exit(main())
