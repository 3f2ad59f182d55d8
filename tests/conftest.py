import os

import pytest
import torch

# Tiny models are dominated by thread start-up cost on small CPUs; one thread is much faster and deterministic.
torch.set_num_threads(1)

# Output must not depend on the terminal (docs/cli.md). The session runs at a narrow 40 columns whatever the
# terminal that started it says, so a test that assumes a wide terminal fails for everyone, not only on a
# newcomer's 80-column one; tests/test_cli_output.py runs the CLI at 60 and 200 columns, piped and on a terminal.
TEST_COLUMNS = "40"
os.environ["COLUMNS"] = TEST_COLUMNS


def pytest_report_header(config):
    return f"COLUMNS={TEST_COLUMNS} (pinned by tests/conftest.py; output must not depend on it)"


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
