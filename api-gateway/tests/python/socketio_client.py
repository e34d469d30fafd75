"""A python-socketio client for the gateway's Socket.IO sink, driven by the Rust tests.

Prints one JSON object per line on stdout:
  {"connected": true}                       once connected (and subscribed, if asked)
  {"ack": {...}}                            the answer to each subscribe
  {"event": TYPE, "data": ENVELOPE}         every event received
  {"refused": MESSAGE}                      when the connection is refused (exit 3)
It ends (exit 0) after an event of --until-type (with --until-subject, of that subject),
or with exit 2 after --timeout seconds. Commands read on stdin, one per line:
  subscribe ID | unsubscribe ID | unsubscribe
"""

import argparse
import json
import sys
import threading

import engineio
import socketio


class _InOrderEngineIO(engineio.Client):
    """python-engineio's client hands every incoming message to its handler on a new
    thread (`run_async=True`), so under load the application sees events in another
    order than the wire had. The tests check the order the gateway sends, so messages
    are handled on the reading thread, one after the other, as they arrived."""

    def _trigger_event(self, event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderClient(socketio.Client):
    def _engineio_client_class(self):
        return _InOrderEngineIO


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key")
    parser.add_argument("--auth-key", help="send the key in the auth payload instead of a header")
    parser.add_argument("--subscribe", action="append", default=[])
    parser.add_argument("--until-type")
    parser.add_argument("--until-subject")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--websocket-only", action="store_true")
    args = parser.parse_args()

    done = threading.Event()
    client = InOrderClient(reconnection=False)

    @client.on("*")
    def any_event(event, data):
        out({"event": event, "data": data})
        if args.until_type and event == args.until_type:
            if args.until_subject is None or data.get("subject") == args.until_subject:
                done.set()

    refusal = {}

    @client.event
    def connect_error(data):
        # The server's reason (python-socketio's exception only says a namespace failed).
        refusal["message"] = data.get("message") if isinstance(data, dict) else str(data)

    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    auth = {"api_key": args.auth_key} if args.auth_key else None
    transports = ["websocket"] if args.websocket_only else ["polling", "websocket"]
    try:
        client.connect(args.url, headers=headers, auth=auth, transports=transports,
                       wait_timeout=10)
    except socketio.exceptions.ConnectionError as e:
        out({"refused": refusal.get("message") or str(e)})
        return 3
    for subject in args.subscribe:
        out({"ack": client.call("subscribe", {"operation_id": subject}, timeout=10)})
    out({"connected": True, "sid": client.sid})

    def commands():
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            payload = {"operation_id": words[1]} if len(words) > 1 else None
            out({"ack": client.call(words[0], payload, timeout=10)})

    threading.Thread(target=commands, daemon=True).start()
    finished = done.wait(args.timeout)
    client.disconnect()
    return 0 if finished else 2


if __name__ == "__main__":
    sys.exit(main())
