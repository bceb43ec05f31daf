"""Shared fixtures.

``shared_data`` is the dev data set beside the repository (../shared/data, described in its README.md
and MANIFEST.tsv); tests that use it skip, with a reason, where it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data root (holding MANIFEST.tsv and dev/); skips the test when dev/ is missing."""
    if not (SHARED_DATA / "dev").is_dir():
        pytest.skip(f"shared dev data not found at {SHARED_DATA / 'dev'}")
    return SHARED_DATA
