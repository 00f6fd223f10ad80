"""A model's chat template, outside the model: for engines that cannot continue a turn.

Resuming a stream elsewhere means "the assistant already said X; go on". vLLM and SGLang
take that as a chat request (``continue_final_message``), llama.cpp's ``llama-server``
prefills a final assistant message itself; a plain OpenAI-compatible server does neither,
so the worker renders the conversation with the model's own template, appends the text
already delivered, and asks the completions endpoint. The template comes from the GGUF
(its ``tokenizer.chat_template``, read without loading the weights) or a Jinja file, as
vLLM's ``--chat-template`` takes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from shared.messages import ChatMessage

__all__ = ["ChatTemplate"]


@dataclass(frozen=True)
class ChatTemplate:
    """A Jinja chat template and the special tokens it refers to."""

    source: str
    bos_token: str = ""
    eos_token: str = ""

    @classmethod
    def load(cls, path: Path) -> ChatTemplate:
        """From a ``.gguf`` (its embedded template) or a Jinja file (anything else)."""
        if path.suffix.lower() == ".gguf":
            return cls.from_gguf(path)
        try:
            return cls(source=path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelLoadError(f"cannot read the chat template {path}: {exc}") from exc

    @classmethod
    def from_gguf(cls, path: Path) -> ChatTemplate:
        """The template a GGUF carries, read with its vocabulary only (no weights)."""
        import llama_cpp

        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        try:
            llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"llama.cpp could not read {path}: {exc}") from exc
        try:
            source = llm.metadata.get("tokenizer.chat_template")
            if not source:
                raise ModelLoadError(f"{path} carries no chat template")
            eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
            bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
        finally:
            llm.close()
        return cls(source=source, bos_token=bos, eos_token=eos)

    def render(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """The conversation as the model reads it, ready for the assistant's turn."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(
            template=self.source,
            eos_token=self.eos_token,
            bos_token=self.bos_token,
            add_generation_prompt=add_generation_prompt,
        )
        turns: Any = [m.model_dump() for m in messages]
        rendered: Any = formatter(messages=turns)
        return str(rendered.prompt)
