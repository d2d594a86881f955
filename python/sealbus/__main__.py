import sys

from sealbus.cli import main

sys.exit(main())
