import sys

from closelint.cli import main

sys.exit(main())
