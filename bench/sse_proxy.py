"""A minimal aiohttp reverse proxy for OpenAI-style SSE: the baseline hop for
``bench.escalation_overhead`` (what a LiteLLM-style HTTP proxy does between a client and
an engine): forward the request, stream each chunk back as it arrives.

    python -m bench.sse_proxy --port 9000 --upstream http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse

import aiohttp
from aiohttp import web

HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "host", "content-encoding"}


def create_app(upstream: str) -> web.Application:
    app = web.Application()
    session: dict[str, aiohttp.ClientSession] = {}

    async def open_session(_: web.Application) -> None:
        session["s"] = aiohttp.ClientSession(auto_decompress=False)

    async def close_session(_: web.Application) -> None:
        await session["s"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with session["s"].request(
            request.method, upstream + request.path_qs, data=body, headers=headers
        ) as upstream_resp:
            response = web.StreamResponse(
                status=upstream_resp.status,
                headers={
                    k: v for k, v in upstream_resp.headers.items() if k.lower() not in HOP_HEADERS
                },
            )
            await response.prepare(request)
            async for chunk in upstream_resp.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL, without /v1")
    args = parser.parse_args()
    web.run_app(create_app(args.upstream), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
