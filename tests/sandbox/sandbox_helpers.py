"""Sandbox test helpers: skip (naming the feature) only when this kernel refuses a protection,
and a scan for processes left behind by sandboxed programs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from sharpen.sandbox import missing_features
from sharpen.sandbox.run import UID_BASE, UID_SPAN

_missing = missing_features()
full_sandbox = pytest.mark.skipif(
    bool(_missing), reason=f"this kernel refuses {', '.join(_missing)}: the full sandbox cannot run here"
)


def sandbox_processes() -> list[str]:
    """Live processes owned by a sandbox uid (only meaningful when the tests run as root)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:  # exited while we looked
            continue
        uid = int(fields.get("Uid", "0").split()[0])
        if UID_BASE <= uid < UID_BASE + UID_SPAN:
            found.append(f"{status.parent.name}: {fields.get('Name', '?').strip()}")
    return found


@pytest.fixture
def no_strays():
    """Assert that no sandboxed process outlives the test's run_python calls."""
    if os.geteuid() != 0:
        pytest.skip("stray-process scan needs root (sandbox uids are only distinct from ours as root)")
    assert sandbox_processes() == []
    yield
    assert sandbox_processes() == []
