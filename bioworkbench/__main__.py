import sys

from bioworkbench.cli import main

sys.exit(main())
