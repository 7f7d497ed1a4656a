import sys

from icemon.cli import main

sys.exit(main())
