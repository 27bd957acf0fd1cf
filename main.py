"""Start PGR²M Studio: ``python main.py`` (see ``--help``)."""

import os
import sys

# Before numpy loads: OpenBLAS's own threads spin after each call and took the cores from the
# model's threads (measured: a click-to-edit 116 ms with them, 69 ms without).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pgr2m_studio.app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
