"""What Ollama and llama-server clients probe, through the ``ollama`` client, the
``openai`` SDK and plain HTTP, over the real bundled model; answers are checked against
the GGUF's own header."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import ollama
import openai
import pytest
import pytest_asyncio
from aiohttp import ClientSession
from openai import AsyncOpenAI
from pydantic import SecretStr

from edge_agent.api.ollama_probe import OLLAMA_VERSION, ROOT_TEXT
from edge_agent.engines.local import LocalEngine
from inference.gguf import read_gguf
from tests.edge_agent.api.harness import (
    N_CTX,
    Agent,
    cloud_engine,
    llama_runner,
    model_path,
    running_agent,
)
from tests.support.wait import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "k" * 32


@pytest_asyncio.fixture(loop_scope="module")
async def client(agent: Agent) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=agent.v1, api_key="x", max_retries=0) as sdk:
        yield sdk


def file_sha256() -> str:
    return hashlib.sha256(model_path().read_bytes()).hexdigest()


async def test_ollama_show_reads_the_gguf(agent: Agent) -> None:
    header = read_gguf(model_path())
    shown = await ollama.AsyncClient(host=agent.url).show("edge")
    info = shown.modelinfo
    assert info is not None
    assert info["general.architecture"] == "llama"
    assert info["llama.context_length"] == header.arch_int("context_length") == 8192
    assert info["llama.embedding_length"] == 576
    assert info["general.parameter_count"] == header.parameter_count
    assert shown.details is not None
    assert shown.details.family == "llama"
    assert shown.details.quantization_level == "Q4_1"  # the file's name says so too
    assert shown.details.parameter_size == "134.52M"
    assert shown.template == header.get_str("tokenizer.chat_template")
    assert shown.parameters is not None
    lines = shown.parameters.splitlines()
    assert f"num_ctx {N_CTX}" in lines and 'stop "<|im_end|>"' in lines
    # As Continue reads them: one "key value" per line, values JSON-parsed.
    parsed = [re.match(r'^(\S+)\s+((?:".*")|\S+)$', line) for line in lines]
    assert all(parsed)
    assert [json.loads(m[2]) for m in parsed if m and m[1] == "stop"] == ["<|im_end|>"]
    assert shown.capabilities == ["completion", "tools", "embedding"]
    assert shown.license == "apache-2.0"
    # auto describes the local file too; the file's own name and ':latest' resolve.
    for name in ("auto", f"{agent.local.model}:latest"):
        other = await ollama.AsyncClient(host=agent.url).show(name)
        assert other.modelinfo == info


async def test_ollama_show_unknown_and_refused(http: ClientSession, agent: Agent) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        await ollama.AsyncClient(host=agent.url).show("llama3")
    assert err.value.status_code == 404 and "llama3" in err.value.error
    body = {"model": "edge", "verbose": True}
    async with http.post(f"{agent.url}/api/show", json=body) as response:
        assert response.status == 400
        assert (await response.json())["error"].startswith("verbose:")
    async with http.post(f"{agent.url}/api/show", json={"name": "edge"}) as response:
        assert response.status == 200  # the older field name


async def test_ollama_list_has_the_files_details(agent: Agent) -> None:
    listed = await ollama.AsyncClient(host=agent.url).list()
    by_name = {m.model: m for m in listed.models}
    assert set(by_name) == {"auto", "edge", agent.local.model}
    entry = by_name["edge"]
    assert entry.size == model_path().stat().st_size
    assert entry.digest == file_sha256()
    assert entry.details is not None
    assert (entry.details.family, entry.details.quantization_level) == ("llama", "Q4_1")
    assert entry.details.format == "gguf"


async def test_ollama_ps_lists_the_loaded_model(agent: Agent) -> None:
    running = await ollama.AsyncClient(host=agent.url).ps()
    (model,) = running.models
    assert model.model == agent.local.model
    assert model.context_length == N_CTX
    assert model.size == model_path().stat().st_size and model.size_vram == 0
    assert model.digest == file_sha256()


async def test_root_and_version(http: ClientSession, agent: Agent) -> None:
    async with http.get(f"{agent.url}/") as response:
        assert response.status == 200
        assert await response.text() == ROOT_TEXT
    async with http.head(f"{agent.url}/") as response:
        assert response.status == 200
    async with http.get(f"{agent.url}/api/version") as response:
        assert await response.json() == {"version": OLLAMA_VERSION}
    # No version at or past 0.9 (where "think" arrived), which is not served.
    assert tuple(int(p) for p in OLLAMA_VERSION.split(".")) < (0, 9)


async def test_openai_models_retrieve(client: AsyncOpenAI, agent: Agent) -> None:
    for name in ("auto", "edge", agent.local.model):
        card = await client.models.retrieve(name)
        assert card.id == name and card.object == "model"
    with pytest.raises(openai.NotFoundError) as err:
        await client.models.retrieve("gpt-4o")
    assert err.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert err.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    listed = {m.id async for m in client.models.list()}
    tags = await ollama.AsyncClient(host=agent.url).list()
    assert listed == {m.model for m in tags.models}  # one list of names for both dialects


async def test_llama_server_health_and_props(http: ClientSession, agent: Agent) -> None:
    async with http.get(f"{agent.url}/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    async with http.get(f"{agent.url}/props") as response:
        assert response.status == 200
        props = await response.json()
    assert props["default_generation_settings"]["n_ctx"] == N_CTX
    assert props["total_slots"] == 1
    assert props["model_path"] == model_path().name
    assert "<|im_start|>" in props["chat_template"]


async def test_tokenize_detokenize_round_trip(http: ClientSession, agent: Agent) -> None:
    text = "Héllo, wörld! <|im_end|> 🦙"
    async with http.post(f"{agent.url}/tokenize", json={"content": text}) as response:
        assert response.status == 200
        tokens = (await response.json())["tokens"]
    assert all(isinstance(t, int) for t in tokens) and len(tokens) > 5
    assert 2 in tokens  # parse_special (the default): <|im_end|> is the one EOS token
    async with http.post(f"{agent.url}/detokenize", json={"tokens": tokens}) as response:
        assert response.status == 200
        assert (await response.json())["content"] == text
    plain = {"content": "<|im_end|>", "parse_special": False, "with_pieces": True}
    async with http.post(f"{agent.url}/tokenize", json=plain) as response:
        pieces = (await response.json())["tokens"]
    assert len(pieces) > 1 and "".join(p["piece"] for p in pieces) == "<|im_end|>"
    bad = {"tokens": [1, 10**9]}
    async with http.post(f"{agent.url}/detokenize", json=bad) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["param"] == "tokens" and "tokens[1]" in error["message"]


async def test_probes_and_the_api_key(http: ClientSession, agent: Agent) -> None:
    """Liveness probes are public, as Ollama's and llama-server's are; anything that
    runs or describes the model needs the key."""
    async with running_agent(agent.local, api_key=SecretStr(KEY)) as keyed:
        for path in ("/", "/health", "/api/version", "/healthz"):
            async with http.get(f"{keyed.url}{path}") as response:
                assert response.status == 200, path
        for method, path in (
            ("GET", "/api/tags"),
            ("GET", "/api/ps"),
            ("POST", "/api/show"),
            ("GET", "/props"),
            ("POST", "/tokenize"),
            ("POST", "/detokenize"),
            ("POST", "/v1/embeddings"),
            ("POST", "/api/embed"),
            ("GET", "/v1/models/edge"),
        ):
            async with http.request(method, f"{keyed.url}{path}", json={}) as response:
                assert response.status == 401, path
        authed = ollama.AsyncClient(host=keyed.url, headers={"Authorization": f"Bearer {KEY}"})
        assert (await authed.show("edge")).details is not None


async def test_health_says_loading_until_the_model_is(http: ClientSession, agent: Agent) -> None:
    engine = LocalEngine(llama_runner())
    async with running_agent(engine) as loading:
        async with http.get(f"{loading.url}/health") as response:
            assert response.status == 503
            assert (await response.json())["error"]["message"] == "Loading model"
        running = await ollama.AsyncClient(host=loading.url).ps()
        assert running.models == []
        await engine.load()

        async def healthy() -> bool:
            async with http.get(f"{loading.url}/health") as response:
                return response.status == 200

        await eventually(healthy, what="/health ok once loaded")
    await engine.aclose()


async def test_cloud_names_are_consistent_across_endpoints(
    http: ClientSession, agent: Agent, client: AsyncOpenAI
) -> None:
    # Without a cloud, 'cloud' is no name of this agent, in any endpoint.
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("cloud")
    with pytest.raises(ollama.ResponseError) as err:
        await ollama.AsyncClient(host=agent.url).show("cloud")
    assert err.value.status_code == 404
    # With one, it is listed, described by name only, retrievable (and so is the
    # workers' own model name), and refused for embeddings.
    async with cloud_engine() as cloud, running_agent(agent.local, cloud=cloud) as linked:
        ollama_client = ollama.AsyncClient(host=linked.url)
        tags = {m.model: m for m in (await ollama_client.list()).models}
        assert set(tags) == {"auto", "edge", "cloud", linked.local.model}
        assert tags["cloud"].size == 0 and not tags["cloud"].digest
        shown = await ollama_client.show("cloud")
        assert shown.modelinfo == {} and shown.capabilities == ["completion", "tools"]
        async with AsyncOpenAI(base_url=linked.v1, api_key="x", max_retries=0) as sdk:
            listed = {m.id async for m in sdk.models.list()}
            assert listed == set(tags)
            for name in ("cloud", cloud.model):
                assert (await sdk.models.retrieve(name)).id == name
            with pytest.raises(openai.BadRequestError) as refused:
                await sdk.embeddings.create(model="cloud", input="hello")
            assert refused.value.body["param"] == "model"  # type: ignore[index]
        running = await ollama_client.ps()
        assert [m.model for m in running.models] == [linked.local.model]


async def test_a_separate_embedding_model_is_listed_and_described(
    agent: Agent, tmp_path: Path
) -> None:
    # Another file name for the same GGUF: a separate --embedding-model as far as the
    # agent can tell (no package ships a small embedding GGUF to test with).
    embedder = tmp_path / "embedder.gguf"
    embedder.symlink_to(model_path())
    async with running_agent(agent.local, embedding_model=embedder) as separate:
        client = ollama.AsyncClient(host=separate.url)
        names = [m.model for m in (await client.list()).models]
        assert names == ["auto", "edge", separate.local.model, "embedder"]
        assert (await client.show("embedder")).capabilities == ["embedding"]
        assert (await client.show("edge")).capabilities == ["completion", "tools"]
        assert [m.model for m in (await client.ps()).models] == [separate.local.model]
        async with AsyncOpenAI(base_url=separate.v1, api_key="x", max_retries=0) as sdk:
            result = await sdk.embeddings.create(model="embedder", input="hello")
        assert result.model == "embedder"
        loaded = [m.model for m in (await client.ps()).models]
        assert loaded == [separate.local.model, "embedder"]
