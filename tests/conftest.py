import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_global_rng():
    """Tests must not leak global RNG state into each other."""
    state = torch.get_rng_state()
    yield
    torch.set_rng_state(state)
