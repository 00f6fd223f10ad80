"""Every block's output at the last token, read through llama.cpp's eval callback."""

from __future__ import annotations

import numpy as np
import pytest

from router_lab.layers import CHECK_KEY, checked_reader
from router_lab.second import main as second_main
from router_lab.second import tensor_of


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


def test_a_state_names_the_tensor_the_edge_reads() -> None:
    assert tensor_of("prompt") == tensor_of("prefill30") == "result_norm"
    assert tensor_of("layer20") == tensor_of("prefill20") == "l_out-20"
    assert tensor_of("prefill12,20,30") == "l_out-12,l_out-20,result_norm"
    with pytest.raises(ValueError, match="no block 31"):
        tensor_of("prefill31")
    with pytest.raises(ValueError, match="distinct"):
        tensor_of("prefill20,20")


def test_a_block_the_model_lacks_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        second_main(["--state", "layer99", "--write", "/nonexistent/head.json"])
    assert "no block 99" in capsys.readouterr().err
