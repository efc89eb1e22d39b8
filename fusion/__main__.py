"""``python -m fusion`` runs the ``fusion-iqa`` command."""

import sys

from fusion.cli import main

sys.exit(main())
