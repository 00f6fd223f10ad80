"""``DeltaTemplate`` writes what pydantic writes for the same delta, for any text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.api.ollama_compat import OllamaShape
from edge_agent.api.openai_compat import ChatShape, TextShape
from edge_agent.api.streaming import DeltaTemplate

# Text as the runner hands it over: decoded with errors="replace", so no lone surrogates.
TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
CHAT = ChatShape(id="chatcmpl-1", created=1_700_000_000, model='m"odel\n', include_usage=False)
COMPLETION = TextShape(id="cmpl-1", created=1_700_000_000, model="smol", include_usage=True)


@given(TEXT)
def test_chat_delta_matches_pydantic(text: str) -> None:
    template = DeltaTemplate.of(CHAT)
    event = CHAT.delta(text)
    assert template is not None and event is not None
    assert template.render(text) == event.model_dump_json().encode()


@given(TEXT)
def test_completion_delta_matches_pydantic(text: str) -> None:
    template = DeltaTemplate.of(COMPLETION)
    assert template is not None
    assert template.render(text) == COMPLETION.delta(text).model_dump_json().encode()


def test_shapes_with_per_event_fields_get_no_template() -> None:
    """Ollama's lines carry a timestamp each: they are serialized one by one."""
    shape = OllamaShape.__new__(OllamaShape)  # no Served needed to ask
    assert DeltaTemplate.of(shape) is None
