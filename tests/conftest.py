from __future__ import annotations

import sys
from pathlib import Path

import pytest
import sealbus

# The shared OrderPlaced workload, copied into tests/ (see its first line).
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def router() -> sealbus.Router:
    return sealbus.Router(allow_schemaless=True)
