import sys

from gateway_trio.cli import main

sys.exit(main())
