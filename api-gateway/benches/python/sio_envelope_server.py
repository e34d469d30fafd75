"""The python-socketio side of the event-delivery benchmark (api-gateway/benches/event_delivery.rs).

A python-socketio AsyncServer as an ASGI app under uvicorn, emitting the gateway's own
envelopes: --template is one `operation.progress` envelope the hostbridge gateway
published (JSON), and each of the --warmup + --count emits is a fresh copy of it with a
new id, timestamp and data.progress.context.sent_ns (time.time_ns() taken first, then
the envelope is built and emitted, as the gateway stamps the change before it builds
its envelope). Event name = the envelope's type, payload = the envelope, one emit every
--interval-ms, starting when the first client connects.

Prints {"port": PORT} on stdout once listening on 127.0.0.1 (an ephemeral port), then
serves until killed.
Usage: sio_envelope_server.py --template FILE [--count 1000] [--warmup 50] [--interval-ms 2]
"""

import argparse
import asyncio
import copy
import datetime
import json
import socket
import sys
import time
import uuid

import socketio
import uvicorn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--template", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--interval-ms", type=float, default=2.0)
    args = parser.parse_args()
    with open(args.template, encoding="utf-8") as f:
        template = json.load(f)
    event = template["type"]

    sio = socketio.AsyncServer(async_mode="asgi")
    app = socketio.ASGIApp(sio)
    started = [False]

    def envelope(sent_ns):
        env = copy.deepcopy(template)
        env["id"] = str(uuid.uuid4())
        now = datetime.datetime.now(datetime.timezone.utc)
        env["timestamp"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        env["data"]["progress"]["context"] = {"sent_ns": sent_ns}
        return env

    async def emit_all():
        loop = asyncio.get_running_loop()
        interval = args.interval_ms / 1000.0
        due = loop.time()
        for _ in range(args.warmup + args.count):
            await sio.emit(event, envelope(time.time_ns()))
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))

    @sio.event
    async def connect(sid, environ):
        if not started[0]:
            started[0] = True
            sio.start_background_task(emit_all)

    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, as
    # the ones uvicorn binds by itself do. Without it, Nagle + delayed ACKs stall
    # small pushes for 40 ms at a time.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sys.stdout.write(json.dumps({"port": sock.getsockname()[1]}) + "\n")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
