"""A fake cloud metadata service (AWS IMDSv2 and GCP), the one double allowed here:
users never run a cloud provider's metadata endpoint; tests flip its notice."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

TOKEN = "imds-session-token"


@dataclass
class Notice:
    """Whether the fake provider has announced a preemption."""

    given: bool = False
    polls: int = 0
    """Times a worker asked (either provider's endpoint)."""


def metadata_app(notice: Notice) -> web.Application:
    async def aws_token(request: web.Request) -> web.Response:
        if "X-aws-ec2-metadata-token-ttl-seconds" not in request.headers:
            return web.Response(status=400)
        return web.Response(text=TOKEN)

    async def aws_action(request: web.Request) -> web.Response:
        notice.polls += 1
        if request.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return web.Response(status=401)
        if not notice.given:
            return web.Response(status=404)
        return web.json_response({"action": "terminate", "time": "2026-11-29T12:00:00Z"})

    async def gcp_preempted(request: web.Request) -> web.Response:
        notice.polls += 1
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403)
        return web.Response(text="TRUE" if notice.given else "FALSE")

    app = web.Application()
    app.router.add_put("/latest/api/token", aws_token)
    app.router.add_get("/latest/meta-data/spot/instance-action", aws_action)
    app.router.add_get("/computeMetadata/v1/instance/preempted", gcp_preempted)
    return app
