"""`python -m evalplatform` is the `evalplatform` command."""

import sys

from evalplatform.cli import main

sys.exit(main())
