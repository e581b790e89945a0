"""Shared test fixtures for train/tests."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny ops: extra threads only contend on a shared CPU (train.main sets its own count)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
