"""A fake cloud metadata service (AWS IMDSv2, GCP, Azure), the one double allowed here:
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
    """Times a worker asked for a notice (any provider's endpoint)."""


def metadata_app(notice: Notice, provider: str | None = None) -> web.Application:
    """Every provider's endpoints, or only ``provider``'s (``aws``, ``gcp``, ``azure``):
    a machine has one cloud, and detection must find that one."""

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

    async def gcp_id(request: web.Request) -> web.Response:
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403)
        return web.Response(text="4520031799277581759", headers={"Metadata-Flavor": "Google"})

    async def gcp_preempted(request: web.Request) -> web.Response:
        notice.polls += 1
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403)
        return web.Response(text="TRUE" if notice.given else "FALSE")

    async def azure_instance(request: web.Request) -> web.Response:
        if request.headers.get("Metadata") != "true":
            return web.Response(status=400)
        return web.json_response({"compute": {"name": "gpu-1", "priority": "Spot"}})

    async def azure_events(request: web.Request) -> web.Response:
        notice.polls += 1
        if request.headers.get("Metadata") != "true":
            return web.Response(status=400)
        events: list[dict[str, object]] = [
            {"EventId": "1", "EventType": "Freeze", "EventStatus": "Scheduled"}
        ]
        if notice.given:
            events.append(
                {
                    "EventId": "2",
                    "EventType": "Preempt",
                    "ResourceType": "VirtualMachine",
                    "Resources": ["gpu-1"],
                    "EventStatus": "Scheduled",
                    "NotBefore": "Sun, 06 Dec 2026 12:00:30 GMT",
                    "EventSource": "Platform",
                    "DurationInSeconds": -1,
                }
            )
        return web.json_response({"DocumentIncarnation": 2, "Events": events})

    app = web.Application()
    if provider in (None, "aws"):
        app.router.add_put("/latest/api/token", aws_token)
        app.router.add_get("/latest/meta-data/spot/instance-action", aws_action)
    if provider in (None, "gcp"):
        app.router.add_get("/computeMetadata/v1/instance/id", gcp_id)
        app.router.add_get("/computeMetadata/v1/instance/preempted", gcp_preempted)
    if provider in (None, "azure"):
        app.router.add_get("/metadata/instance", azure_instance)
        app.router.add_get("/metadata/scheduledevents", azure_events)
    return app
