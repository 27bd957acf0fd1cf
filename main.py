"""Start PGR²M Studio: ``python main.py`` (see ``--help``)."""

import sys

from pgr2m_studio.app import main

if __name__ == "__main__":
    sys.exit(main())
