"""Bars into a pandas DataFrame over Arrow, end to end, against the in-memory floor.

Usage: arrow_pandas.py BASE_URL SYMBOL TIMEFRAME RUNS

End to end: POST /data/historical with `Accept: application/vnd.apache.arrow.stream`
on a fresh connection (what a client that asks once does), the whole body read with
http.client, decoded by pyarrow and turned into a pandas DataFrame.

Floor: the same table, already in this process, written as an Arrow IPC stream into
memory, read back and turned into a DataFrame: what no server can beat.

Prints one JSON line: {"end_to_end_ms": [...], "floor_ms": [...], "rows": N,
"bytes": N, "pyarrow": VERSION, "pandas": VERSION}.
"""

import http.client
import json
import sys
import time
import urllib.parse

import pandas as pd
import pyarrow as pa

ARROW = "application/vnd.apache.arrow.stream"


def fetch(url: urllib.parse.SplitResult, body: bytes) -> tuple[pd.DataFrame, pa.Table, int]:
    connection = http.client.HTTPConnection(url.hostname, url.port)
    connection.request(
        "POST",
        "/data/historical",
        body=body,
        headers={"Content-Type": "application/json", "Accept": ARROW},
    )
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    if response.status != 200 or response.getheader("Content-Type", "").split(";")[0] != ARROW:
        raise SystemExit(f"answer {response.status} {response.getheader('Content-Type')}: {payload[:200]!r}")
    table = pa.ipc.open_stream(payload).read_all()
    return table.to_pandas(), table, len(payload)


def floor(table: pa.Table) -> pd.DataFrame:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.ipc.open_stream(sink.getvalue()).read_all().to_pandas()


def timed(f, *args):
    started = time.perf_counter()
    result = f(*args)
    return (time.perf_counter() - started) * 1e3, result


def main() -> None:
    base, symbol, timeframe, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    url = urllib.parse.urlsplit(base)
    body = json.dumps(
        {
            "symbol": symbol,
            "timeframe": timeframe,
            "start": "1900-01-01T00:00:00Z",
            "end": "2100-01-01T00:00:00Z",
        }
    ).encode()
    # Warm-up: the server's parsed-file cache and this process's imports.
    _, (frame, table, size) = timed(fetch, url, body)
    end_to_end, floors = [], []
    # Interleaved, so other load on the box touches both alike.
    for _ in range(runs):
        ms, (again, _, _) = timed(fetch, url, body)
        end_to_end.append(ms)
        if len(again) != len(frame):
            raise SystemExit(f"{len(again)} rows, then {len(frame)}")
        ms, copy = timed(floor, table)
        floors.append(ms)
        if not copy.equals(frame):
            raise SystemExit("the floor's frame differs from the fetched one")
    print(
        json.dumps(
            {
                "end_to_end_ms": end_to_end,
                "floor_ms": floors,
                "rows": len(frame),
                "bytes": size,
                "pyarrow": pa.__version__,
                "pandas": pd.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
