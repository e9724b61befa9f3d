import sys

from stokline.cli import main

sys.exit(main())
