"""The baseline: a bare aiohttp handler that parses the notification and, per alert, does one
`send_and_wait` of the received body to the same topic with the same producer settings, then
answers 202. No validation, no envelope (ids, headers), no metrics, no error handling."""

from __future__ import annotations

import argparse
import asyncio

import orjson
from aiohttp import web

from hookline.kafka import create_producer
from hookline.settings import ComponentSettings

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
args = parser.parse_args()

PRODUCER = web.AppKey("producer", object)
accepted = 0


async def hook(request: web.Request) -> web.Response:
    global accepted
    raw = await request.read()
    body = orjson.loads(raw)
    producer = request.app[PRODUCER]
    for alert in body["alerts"]:
        await producer.send_and_wait(args.topic, raw, key=alert["fingerprint"].encode())  # type: ignore[attr-defined]
    accepted += 1
    return web.Response(status=202, body=b'{"accepted":1}', content_type="application/json")


async def count(request: web.Request) -> web.Response:
    return web.json_response({"accepted": accepted})


async def producer_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    # The same producer settings as the gateway's (HOOKLINE_KAFKA__* from the environment).
    kafka = ComponentSettings().kafka.model_copy(update={"bootstrap_servers": args.bootstrap})
    producer = create_producer(kafka)
    await producer.start()
    app[PRODUCER] = producer
    yield
    await producer.stop()


app = web.Application()
app.cleanup_ctx.append(producer_ctx)
app.router.add_post("/hooks/alertmanager", hook)
app.router.add_get("/count", count)
app.router.add_get("/readyz", count)
loop: asyncio.AbstractEventLoop | None
try:
    import uvloop

    loop = uvloop.new_event_loop()
except ImportError:
    loop = None
web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, loop=loop)
