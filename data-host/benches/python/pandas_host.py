"""The Python side of the JSON benchmarks: KTRDR's way of serving bars.

A FastAPI + pandas host holding the bars in a pandas DataFrame (UTC DatetimeIndex):
- POST /data/historical as KTRDR's IB host service answers it: the bars sliced to
  [start, end], `data = df.to_json(orient="index", date_format="iso")` in a pydantic
  response model (data-host's json_contract bench);
- GET /api/v1/data/{symbol}/{timeframe} as KTRDR's backend answers it: `dates` and
  `ohlcv` lists from the frame in a JSON response (the gateway's bars_json bench).

Usage: python3 pandas_host.py BARS.csv   (prints "listening PORT" once it accepts)
"""

import socket
import sys
from typing import Optional

import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class HistoricalDataRequest(BaseModel):
    symbol: str
    timeframe: str
    start: str
    end: str
    instrument_type: Optional[str] = None


class HistoricalDataResponse(BaseModel):
    success: bool
    data: Optional[str] = None
    error: Optional[str] = None
    rows: Optional[int] = None


def utc(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp


def main() -> None:
    bars = pd.read_csv(sys.argv[1], index_col="timestamp")
    bars.index = pd.to_datetime(bars.index, utc=True)
    bars = bars.astype("float64")
    app = FastAPI()

    @app.post("/data/historical", response_model=HistoricalDataResponse)
    async def historical(request: HistoricalDataRequest) -> HistoricalDataResponse:
        start, end = utc(request.start), utc(request.end)
        df = bars[(bars.index >= start) & (bars.index <= end)]
        data = df.to_json(orient="index", date_format="iso")
        return HistoricalDataResponse(success=True, data=data, rows=len(df))

    @app.get("/api/v1/data/{symbol}/{timeframe}")
    async def bars_route(symbol: str, timeframe: str, start_date: Optional[str] = None, end_date: Optional[str] = None) -> dict:
        df = bars
        if start_date:
            df = df[df.index >= utc(start_date)]
        if end_date:
            df = df[df.index < utc(end_date)]
        return {
            "success": True,
            "data": {
                "symbol": symbol,
                "timeframe": timeframe,
                "points": len(df),
                "start": df.index[0].isoformat() if len(df) else None,
                "end": df.index[-1].isoformat() if len(df) else None,
                "dates": [t.isoformat() for t in df.index],
                "ohlcv": df[["open", "high", "low", "close", "volume"]].values.tolist(),
            },
        }

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"listening {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
