"""Embeddings through the official clients, unchanged, over the real bundled model:
the ``openai`` SDK, the ``ollama`` client and LangChain's ``OpenAIEmbeddings``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence

import ollama
import openai
import pytest
import pytest_asyncio
from aiohttp import ClientSession
from langchain_openai import OpenAIEmbeddings
from openai import AsyncOpenAI
from pydantic import SecretStr

from edge_agent.api.app import LOCAL_MODEL
from inference.gguf import read_gguf
from tests.edge_agent.api.harness import Agent, model_path, running_agent
from tests.support.wait import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

CAT = "The cat sat on the mat."
KITTEN = "A kitten was sitting on the rug."
REVENUE = "Quarterly revenue rose by five percent."


@pytest_asyncio.fixture(loop_scope="module")
async def client(agent: Agent) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=agent.v1, api_key="x", max_retries=0) as sdk:
        yield sdk


def n_embd() -> int:
    header = read_gguf(model_path())
    value = header.arch_int("embedding_length")
    assert value is not None
    return value


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def assert_semantic(
    cat: Sequence[float], kitten: Sequence[float], revenue: Sequence[float]
) -> None:
    """Similar sentences are closer than unrelated ones, and vectors are unit length."""
    assert cosine(cat, kitten) > cosine(cat, revenue)
    assert cosine(cat, kitten) > cosine(kitten, revenue)
    for vector in (cat, kitten, revenue):
        assert len(vector) == n_embd()
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)


async def test_openai_sdk_embeddings(client: AsyncOpenAI, agent: Agent) -> None:
    # The SDK asks for base64 unless told otherwise, and decodes it itself.
    result = await client.embeddings.create(model="edge", input=[CAT, KITTEN, REVENUE])
    assert [d.index for d in result.data] == [0, 1, 2]
    assert_semantic(*(d.embedding for d in result.data))
    assert result.model == agent.local.model
    assert result.usage.prompt_tokens == result.usage.total_tokens > 10
    floats = await client.embeddings.create(model="auto", input=CAT, encoding_format="float")
    assert len(floats.data) == 1
    assert cosine(floats.data[0].embedding, result.data[0].embedding) > 0.9999


async def test_openai_refusals_name_the_field(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await client.embeddings.create(model="edge", input=CAT, dimensions=64)
    assert err.value.body["param"] == "dimensions"  # type: ignore[index]
    # What LangChain's OpenAIEmbeddings sends by default: tiktoken ids, meaningless here.
    with pytest.raises(openai.BadRequestError) as err:
        await client.embeddings.create(model="edge", input=[[1, 2, 3]])
    assert err.value.body["param"] == "input"  # type: ignore[index]
    assert "check_embedding_ctx_length=False" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        await client.embeddings.create(model="edge", input=[CAT, ""])
    assert err.value.body["param"] == "input[1]"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as missing:
        await client.embeddings.create(model="text-embedding-3-small", input=CAT)
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    # The dimensions the model has are accepted: nothing to shorten.
    same = await client.embeddings.create(model="edge", input=CAT, dimensions=n_embd())
    assert len(same.data[0].embedding) == n_embd()


async def test_limits_are_settings_and_errors_are_shaped(http: ClientSession, agent: Agent) -> None:
    async with running_agent(
        agent.local, embedding_max_inputs=2, embedding_max_input_tokens=16
    ) as small:
        body = {"model": "edge", "input": [CAT, KITTEN, REVENUE]}
        async with http.post(f"{small.v1}/embeddings", json=body) as response:
            assert response.status == 400
            error = (await response.json())["error"]
        assert error["param"] == "input" and "--embedding-max-inputs" in error["message"]
        long = "word " * 40
        async with http.post(f"{small.v1}/embeddings", json={"input": long}) as response:
            assert response.status == 400
            error = (await response.json())["error"]
        assert error["code"] == "context_length_exceeded" and error["param"] == "input"
        # Ollama cuts long inputs by default, and refuses them with truncate=false.
        ok = {"model": "edge", "input": long}
        async with http.post(f"{small.url}/api/embed", json=ok) as response:
            assert response.status == 200
            cut = await response.json()
        assert cut["prompt_eval_count"] == 16 and len(cut["embeddings"][0]) == n_embd()
        refused = {**ok, "truncate": False}
        async with http.post(f"{small.url}/api/embed", json=refused) as response:
            assert response.status == 400
            assert "--embedding-max-input-tokens" in (await response.json())["error"]


async def test_ollama_client_embed(agent: Agent) -> None:
    client = ollama.AsyncClient(host=agent.url)
    result = await client.embed(model="edge", input=[CAT, KITTEN, REVENUE])
    assert_semantic(*result.embeddings)
    assert result.prompt_eval_count is not None and result.prompt_eval_count > 10
    single = await client.embed(model="edge:latest", input=CAT)
    assert cosine(single.embeddings[0], result.embeddings[0]) > 0.9999
    legacy = await client.embeddings(model="edge", prompt=CAT)
    assert cosine(legacy.embedding, result.embeddings[0]) > 0.9999
    with pytest.raises(ollama.ResponseError) as err:
        await client.embed(model="edge", input=CAT, options={"temperature": 0.5})
    assert err.value.status_code == 400 and "options.temperature" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        await client.embed(model="edge", input=CAT, dimensions=8)
    assert err.value.status_code == 400 and "dimensions" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        await client.embed(model="nope", input=CAT)
    assert err.value.status_code == 404


async def test_langchain_openai_embeddings(agent: Agent) -> None:
    # check_embedding_ctx_length=False: otherwise LangChain sends tiktoken ids, which
    # mean nothing to this model (and are refused).
    embeddings = OpenAIEmbeddings(
        model="edge",
        base_url=agent.v1,
        api_key=SecretStr("x"),
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    documents = await embeddings.aembed_documents([CAT, KITTEN, REVENUE])
    assert_semantic(*documents)
    query = await embeddings.aembed_query(CAT)
    assert cosine(query, documents[0]) > 0.9999


async def test_the_cloud_does_not_embed(http: ClientSession, agent: Agent) -> None:
    body = {"model": "edge", "input": CAT}
    headers = {"X-Tandem-Route": "cloud"}
    async with http.post(f"{agent.v1}/embeddings", json=body, headers=headers) as response:
        assert response.status == 400
        assert "X-Tandem-Route" in (await response.json())["error"]["message"]
    headers = {"X-Tandem-Route": "sideways"}
    async with http.post(f"{agent.v1}/embeddings", json=body, headers=headers) as response:
        assert response.status == 400
        assert "X-Tandem-Route" in (await response.json())["error"]["message"]
    headers = {"X-Tandem-Route": "local"}
    async with http.post(f"{agent.v1}/embeddings", json=body, headers=headers) as response:
        assert response.status == 200


async def test_chat_is_not_queued_behind_embeddings_and_a_gone_client_stops_them(
    http: ClientSession, agent: Agent
) -> None:
    assert agent.app is not None
    embedder = agent.app[LOCAL_MODEL].embedder
    started = embedder.embedded_inputs
    # ~490 tokens each: minutes of work on this machine, cancelled long before the end.
    batch = {"model": "edge", "input": ["word " * 490] * 64, "encoding_format": "float"}

    async def embed_all() -> int:
        async with http.post(f"{agent.v1}/embeddings", json=batch) as response:
            return response.status

    embedding = asyncio.create_task(embed_all())
    await eventually(lambda: embedder.embedded_inputs > started, what="the batch under way")
    chat = {"model": "edge", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
    async with http.post(f"{agent.v1}/chat/completions", json=chat) as response:
        assert response.status == 200
        assert (await response.json())["choices"][0]["message"]["content"]
    assert not embedding.done()  # the chat model answered while the batch ran
    embedding.cancel()  # the client goes away
    with pytest.raises(asyncio.CancelledError):
        await embedding
    await eventually(lambda: embedder.busy == 0, what="the embedder idle")
    # The thread stopped before its next input once the request was cancelled; the next
    # request runs after it.
    single = {"model": "edge", "input": CAT}
    async with http.post(f"{agent.v1}/embeddings", json=single) as response:
        assert response.status == 200
    assert embedder.embedded_inputs < started + 64
