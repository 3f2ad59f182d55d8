import pytest
import torch

# Tiny models are dominated by thread start-up cost on small CPUs; one thread is much faster and deterministic.
torch.set_num_threads(1)


@pytest.fixture
def tiny_model():
    from deepforcing.model.config import TINY
    from deepforcing.model.tiny import build_random_generator

    return build_random_generator(TINY, seed=0)


@pytest.fixture
def tiny_text(tiny_model):
    g = torch.Generator().manual_seed(7)
    ctx = torch.randn(1, 12, tiny_model.cfg.text_dim, generator=g)
    return tiny_model.encode_text(ctx)
