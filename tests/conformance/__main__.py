"""``python -m tests.conformance FILE...`` (see :mod:`.cli`)."""

import sys

from .cli import main

sys.exit(main())
