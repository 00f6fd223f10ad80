"""Worker settings: the bounds it serves with."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloud_worker.app import build_backend
from cloud_worker.backends.llama import LlamaBackend
from cloud_worker.settings import WorkerSettings
from tests.support.model import model_path


def test_the_per_stream_bound_is_a_validated_setting() -> None:
    assert WorkerSettings().max_queued_chunks == 64
    with pytest.raises(ValidationError, match="max_queued_chunks"):
        WorkerSettings(max_queued_chunks=0)


def test_the_bound_reaches_every_model_instance() -> None:
    settings = WorkerSettings(model=model_path(), parallel=2, max_queued_chunks=7)
    backend = build_backend(settings)
    assert isinstance(backend, LlamaBackend)
    assert [r.config.max_queued_chunks for r in backend.runners] == [7, 7]
