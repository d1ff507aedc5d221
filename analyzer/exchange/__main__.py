"""``python -m analyzer.exchange --replay PATH ...``"""

import sys

from analyzer.exchange.cli import main

sys.exit(main())
