"""Every block's output at the last token, read through llama.cpp's eval callback."""

from __future__ import annotations

import numpy as np
import pytest

from router_lab.layers import CHECK_KEY, checked_reader
from router_lab.second import main as second_main


def test_the_captured_final_state_is_the_runners_own_and_the_blocks_differ() -> None:
    reader = checked_reader()  # raises if the final state differs from the runner's
    try:
        states = reader.states(CHECK_KEY)
        assert states.shape == (reader.n_layer + 1, reader.runner.n_embd)
        assert np.isfinite(states).all()
        # block 20's output is not the final state under another name
        cosine = states[20] @ states[-1] / np.linalg.norm(states[20]) / np.linalg.norm(states[-1])
        assert cosine < 0.99
    finally:
        import asyncio

        asyncio.run(reader.runner.aclose())


def test_a_lab_only_state_cannot_be_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        second_main(["--state", "layer20", "--write", "/nonexistent/head.json"])
    assert "only the prompt state" in capsys.readouterr().err
