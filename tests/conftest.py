"""Guards shared by the whole suite."""

import sys

import pytest


@pytest.fixture(autouse=True)
def torch_global_state_is_restored(request):
    """A test (or the code under test) that changes torch's default dtype or thread count and
    leaves it changed breaks the tests that happen to run after it; name the culprit instead."""
    torch = sys.modules.get("torch")
    before = (torch.get_default_dtype(), torch.get_num_threads()) if torch else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and before is not None:
        after = (torch.get_default_dtype(), torch.get_num_threads())
        assert after == before, f"{request.node.nodeid} left torch (dtype, threads) {after}"
