"""Allow `python -m presencesync`."""

import sys

from presencesync.cli import main

sys.exit(main())
