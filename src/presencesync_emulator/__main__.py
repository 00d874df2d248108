"""Allow `python -m presencesync_emulator`."""

import sys

from presencesync_emulator.cli import main

sys.exit(main())
