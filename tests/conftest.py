import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(os.environ.get("PGR2M_SHARED", REPO.parent / "shared"))
BANDAI_NAMCO = SHARED / "data" / "bandai-namco"


@pytest.fixture
def test_data() -> Path:
    return TEST_DATA
