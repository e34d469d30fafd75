#!/usr/bin/env python3
"""Checks data-host's HTTP contract from outside, with the clients a KTRDR backend uses:
pandas reads the JSON `data` string (`pd.read_json(..., orient="index")`) and pyarrow
reads the Arrow IPC stream. The JSON text must be byte for byte what pandas' to_json
writes for the store file's bars (what KTRDR's host sends); Arrow must equal them exactly.

Usage: check_data_host.py PATH/TO/data-host DATA_DIR
Runs the checks twice on free loopback ports: against `data-host serve --source local`,
and against `data-host serve --source ib` talking to `data-host ib-sim` over the same
store; prints 'N passed, M failed'.
"""
import io
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pandas as pd
import pyarrow as pa

binary, data_dir = sys.argv[1], sys.argv[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


base = ""


def call(path, body=None, accept="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, headers={"content-type": "application/json", "accept": accept})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers.get("content-type"), r.read()


def stored(symbol, tf, start, end):
    df = pd.read_csv(f"{data_dir}/{symbol}_{tf}.csv", index_col=0, parse_dates=True)
    df.index = pd.to_datetime(df.index, utc=True)
    df = df.astype("float64")
    return df[(df.index >= pd.Timestamp(start, tz="UTC")) & (df.index < pd.Timestamp(end, tz="UTC"))]


passed = failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report every failure and go on
        failed += 1
        print(f"FAIL {name}: {e!r}")


def json_bars_read_by_pandas():
    for symbol, tf, start, end in [("AAPL", "1d", "2010-01-01", "2011-01-01"), ("AAPL", "1h", "2025-01-01", "2025-03-01")]:
        status, _, raw = call("/data/historical", {"symbol": symbol, "timeframe": tf, "start": start, "end": end})
        body = json.loads(raw)
        assert status == 200 and body["success"] is True, body
        expected = stored(symbol, tf, start, end)
        # The text KTRDR's host sends for these bars, byte for byte: pandas' own
        # to_json (its 10 decimals included), so a client parsing either gets the same.
        pandas_text = expected.to_json(orient="index", date_format="iso")
        if body["data"] != pandas_text:
            at = next((i for i, (a, b) in enumerate(zip(body["data"], pandas_text)) if a != b), min(len(body["data"]), len(pandas_text)))
            raise AssertionError(f"data differs from pandas' text at {at}: {body['data'][at - 40:at + 40]!r} vs {pandas_text[at - 40:at + 40]!r}")
        df = pd.read_json(io.StringIO(body["data"]), orient="index")
        df.index = pd.to_datetime(df.index, utc=True)
        df = df[["open", "high", "low", "close", "volume"]].astype("float64").sort_index()
        assert body["rows"] == len(expected) == len(df), (body["rows"], len(expected), len(df))
        # Each value within pandas' 10 decimals of the stored one (Arrow carries them exactly).
        pd.testing.assert_frame_equal(df, expected, check_names=False, check_freq=False, rtol=0, atol=1e-10)


def arrow_bars_read_by_pyarrow():
    status, ctype, raw = call(
        "/data/historical",
        {"symbol": "MSFT", "timeframe": "1d", "start": "2005-01-01", "end": "2008-01-01"},
        accept="application/vnd.apache.arrow.stream",
    )
    assert status == 200 and ctype.startswith("application/vnd.apache.arrow.stream"), ctype
    table = pa.ipc.open_stream(raw).read_all()
    assert table.column_names == ["timestamp", "open", "high", "low", "close", "volume"], table.column_names
    assert str(table.schema.field("timestamp").type) == "timestamp[ms, tz=UTC]", table.schema
    df = table.to_pandas().set_index("timestamp")
    expected = stored("MSFT", "1d", "2005-01-01", "2008-01-01")
    # Same instants; pandas picks different resolutions for the two sources.
    df.index, expected.index = df.index.as_unit("ns"), expected.index.as_unit("ns")
    pd.testing.assert_frame_equal(df, expected, check_names=False, check_freq=False, rtol=0, atol=0)


def failures_are_http_200_with_success_false():
    status, _, raw = call("/data/historical", {"symbol": "AAPL", "timeframe": "7m", "start": "2010-01-01", "end": "2011-01-01"})
    body = json.loads(raw)
    assert status == 200 and body["success"] is False and "timeframe" in body["error"], body


def missing_field_is_fastapis_422_naming_it():
    # As KTRDR's FastAPI data host answers a body that does not fit its model: 422 with
    # pydantic's list, and the hostbridge envelope naming the same field beside it.
    try:
        call("/data/historical", {"symbol": "AAPL", "timeframe": "1d", "start": "2010-01-01"})
        raise AssertionError("expected HTTP 422")
    except urllib.error.HTTPError as e:
        body = json.loads(e.read())
        assert e.code == 422, (e.code, body)
        issue = body["detail"][0]
        assert issue["loc"] == ["body", "end"] and issue["type"] == "missing" and issue["msg"], body
        assert body["error"]["details"]["field"] == "end", body


def health_contract():
    _, _, raw = call("/health")
    body = json.loads(raw)
    assert body["healthy"] is True and body["service"] == "ib-connector" and body["status"] == "healthy", body
    pd.Timestamp(body["timestamp"])


CHECKS = [
    ("json data string is pandas' own to_json text of the stored bars", json_bars_read_by_pandas),
    ("arrow stream read by pyarrow equals the store", arrow_bars_read_by_pyarrow),
    ("failures are HTTP 200 success:false naming the field", failures_are_http_200_with_success_false),
    ("a missing field is FastAPI's 422 naming it", missing_field_is_fastapis_422_naming_it),
    ("/health contract", health_contract),
]


def suite(label, source_args, helpers=()):
    """Runs every check against `data-host serve` started with `source_args`."""
    global base
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs = [subprocess.Popen(h, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for h in helpers]
    procs.append(
        subprocess.Popen(
            [binary, "serve", *source_args, "--bind", f"127.0.0.1:{port}", "--data-dir", data_dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    try:
        for _ in range(300):
            try:
                status, _, _ = call("/ready")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        for name, fn in CHECKS:
            check(f"[{label}] {name}", fn)
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)


suite("--source local", ["--source", "local"])
sim_port = free_port()
suite(
    "--source ib via ib-sim",
    ["--source", "ib", "--ib-address", f"127.0.0.1:{sim_port}"],
    helpers=[[binary, "ib-sim", "--bind", f"127.0.0.1:{sim_port}", "--data-dir", data_dir]],
)

print(f"contract: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
