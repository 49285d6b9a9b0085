import sys

from petseg.cli import main

sys.exit(main())
