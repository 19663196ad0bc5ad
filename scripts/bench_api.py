#!/usr/bin/env python3
"""Upload benchmark against a running vigil: POST /api/v1/detections with one
JPEG at several concurrency levels; prints requests/s and p50/p99 latency.

Standard library only. Registers its own user (the server must allow enough
quota and rate: `make bench-api` starts one that does).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor


def call(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def login(server: str) -> str:
    name = "bench" + uuid.uuid4().hex[:10]
    creds = {"user_name": name, "email": f"{name}@example.org", "password": "benchmark password"}
    status, body = call(f"{server}/api/v1/auth/register", json.dumps(creds).encode(), {"content-type": "application/json"})
    assert status == 201, body
    status, body = call(
        f"{server}/api/v1/auth/login",
        json.dumps({"login": name, "password": creds["password"]}).encode(),
        {"content-type": "application/json"},
    )
    assert status == 200, body
    return json.loads(body)["access_token"]


def run(server: str, token: str, image: bytes, concurrency: int, requests: int) -> None:
    headers = {"authorization": f"Bearer {token}", "content-type": "image/jpeg"}

    def one(_: int) -> tuple[float, float]:
        started = time.perf_counter()
        status, body = call(f"{server}/api/v1/detections", image, headers)
        if status != 201:
            raise SystemExit(f"upload failed: {status} {body[:200]!r}")
        # The server's own figure for the detector, to tell model time from the rest.
        return time.perf_counter() - started, json.loads(body)["duration_ms"]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    detector_p50 = statistics.median(r[1] for r in results)
    print(f"concurrency={concurrency:<3} requests={requests:<4} rps={requests / elapsed:7.1f} "
          f"p50_ms={p50:7.1f} p99_ms={p99:7.1f} detector_p50_ms={detector_p50:7.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="http://127.0.0.1:8080")
    parser.add_argument("--image", required=True, help="a 640x480 JPEG")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    image = open(args.image, "rb").read()
    token = login(args.server)
    run(args.server, token, image, 1, 3)  # warm-up: plan cache, connections
    for c in args.concurrency:
        run(args.server, token, image, c, args.requests)


if __name__ == "__main__":
    main()
