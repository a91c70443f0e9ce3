"""Fixtures over every sandbox provider kind in `provider_cases.KINDS`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provider_cases import KINDS, Case, build_case, modal_credentials


@pytest.fixture(params=KINDS)
def make_case(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Case]:
    """Build the provider of this kind with the test's options (``LocalOptions`` keywords)."""
    kind = request.param
    if shutil.which("bwrap") is None and kind in ("local", "ray", "modal-fake"):
        pytest.skip("bubblewrap is not installed")
    if kind == "ray":
        request.getfixturevalue("ray_cluster")
    if kind == "modal":
        if not modal_credentials():
            pytest.skip("real Modal needs credentials: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET to run the "
                        "contract suite against it (the fake at the SDK boundary runs as modal-fake)")
        pytest.importorskip("modal", reason="the modal SDK is not installed (pip install -e '.[modal]')")
    made = 0

    def make(**options: Any) -> Case:
        nonlocal made
        made += 1
        return build_case(kind, tmp_path / f"case{made}", **options)

    return make


@pytest.fixture
def case(make_case: Callable[..., Case]) -> Case:
    return make_case()
