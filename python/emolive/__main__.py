"""`python -m emolive ...` runs the `emolive` command (useful where the scripts folder is not on PATH)."""

import sys

from emolive.cli import main

sys.exit(main())
