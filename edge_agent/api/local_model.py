"""``LocalModel``: the local model as the describing and embedding endpoints see it.

Generation goes through the serving pipeline; these endpoints need other things from
the same GGUF: its file (facts, digest), its tokenizer, an embedding context. They are
gathered here, created from the settings by ``build_api``, and closed with the app.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.engines.local import LocalEngine
from edge_agent.settings import EdgeSettings
from inference.embeddings import EmbeddingConfig, EmbeddingRunner
from inference.model_file import ModelFile
from inference.vocab import Vocabulary

__all__ = ["LocalModel"]


@dataclass(frozen=True)
class LocalModel:
    """The local chat model's engine and file, and the embedding model's."""

    engine: LocalEngine
    file: ModelFile
    vocabulary: Vocabulary
    embedder: EmbeddingRunner
    embedding_file: ModelFile
    max_embedding_inputs: int

    @classmethod
    def from_settings(cls, settings: EdgeSettings, engine: LocalEngine) -> LocalModel:
        """Raises ``ValueError`` for an ``--embedding-model`` that is not a file."""
        file = ModelFile(engine.model_path)
        if settings.embedding_model is None:
            embedding_file = file
        else:
            path = settings.embedding_model.expanduser()
            if not path.is_file():
                raise ValueError(f"--embedding-model: file not found: {path}")
            embedding_file = ModelFile(path)
        embedder = EmbeddingRunner(
            EmbeddingConfig(
                model_path=embedding_file.path,
                max_input_tokens=settings.embedding_max_input_tokens,
                n_threads=settings.embedding_threads,
                max_waiting=settings.embedding_max_queue,
            )
        )
        return cls(
            engine=engine,
            file=file,
            vocabulary=Vocabulary(engine.model_path),
            embedder=embedder,
            embedding_file=embedding_file,
            max_embedding_inputs=settings.embedding_max_inputs,
        )

    @property
    def n_ctx(self) -> int:
        """The context the local model is loaded with (``--n-ctx``)."""
        return self.engine.n_ctx

    @property
    def separate_embedding_model(self) -> bool:
        return self.embedding_file is not self.file

    async def aclose(self) -> None:
        await self.embedder.aclose()
        self.vocabulary.close()
