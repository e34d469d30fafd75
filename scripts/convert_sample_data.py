#!/usr/bin/env python3
"""Convert the shared sample market data into the store layout of data/.

Source files (see data/README.md for origin and licence) are read from the directory
given as the first argument (default ../shared/data). Output: data/{SYMBOL}_{TF}.csv
with a UTC `%Y-%m-%dT%H:%M:%SZ` timestamp, then open,high,low,close,volume. Prices
are copied as written (no re-rounding). Standard library only.
"""
import csv
import gzip
import sys
from datetime import datetime, timezone
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
out = Path(__file__).resolve().parent.parent / "data"
out.mkdir(exist_ok=True)
HEADER = ["timestamp", "open", "high", "low", "close", "volume"]


def utc(text: str) -> str:
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write(name: str, rows):
    rows = sorted(rows)
    with open(out / name, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
    print(f"{name}: {len(rows)} bars")


daily = {}
with gzip.open(src / "stocks-daily-2000-2013.csv.gz", "rt", newline="") as f:
    for r in csv.DictReader(f):
        daily.setdefault(r["Ticker"], []).append(
            [utc(r["Date"]), r["Open"], r["High"], r["Low"], r["Close"], r["Volume"]]
        )
for ticker, rows in daily.items():
    write(f"{ticker}_1d.csv", rows)

for file, tf in [("aapl-hourly-2024-2026.csv", "1h"), ("aapl-minute-2026.csv", "1m")]:
    with open(src / file, newline="") as f:
        rows = [[utc(r["datetime"]), r["open"], r["high"], r["low"], r["close"], r["volume"]] for r in csv.DictReader(f)]
    write(f"AAPL_{tf}.csv", rows)
