#!/usr/bin/env python3
"""Upload benchmark against a running vigil: POST /api/v1/detections with one
JPEG at several concurrency levels; prints requests/s, p50/p99 latency and,
with --server-pid, the server's CPU time and resident memory per request.
With --gallery N, runs again after enrolling N subjects with 3 faces each
(photos cycled from --photos), so recognition searches a real gallery.

Standard library only. Registers its own user (the server must allow enough
quota and rate: `make bench-api` starts one that does).
"""
from __future__ import annotations

import argparse
import json
import os
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


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (the reference service's workers)."""
    pids = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            children = open(f"/proc/{pid}/task/{task}/children").read().split()
        except OSError:
            continue
        for child in children:
            pids.extend(tree(int(child)))
    return pids


def cpu_secs(pid: int | None) -> float:
    """User + system CPU of `pid` and its descendants so far."""
    if pid is None:
        return 0.0
    total = 0
    for p in tree(pid):
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int | None, field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or at its peak so far (VmHWM), summed
    over `pid` and its descendants."""
    if pid is None:
        return 0.0
    total = 0
    for p in tree(pid):
        try:
            lines = open(f"/proc/{p}/status").readlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith(field + ":"))
    return total / 1024


def big_images(server: str, token: str, image: bytes, concurrency: int, pid: int | None) -> None:
    """`concurrency` uploads of one large image at once: how many were
    stored, how many refused `busy`, and the server's peak memory."""
    headers = {"authorization": f"Bearer {token}", "content-type": "image/png"}

    def one(_: int) -> int:
        status, body = call(f"{server}/api/v1/detections", image, headers)
        if status not in (201, 503):
            raise SystemExit(f"big upload failed: {status} {body[:200]!r}")
        return status

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        statuses = list(pool.map(one, range(concurrency)))
    print(f"big_images={concurrency} png_kib={len(image) // 1024} created={statuses.count(201)} "
          f"busy={statuses.count(503)} seconds={time.perf_counter() - started:.1f} "
          f"server_peak_rss_mib={rss_mib(pid, 'VmHWM'):6.1f} server_rss_mib={rss_mib(pid):6.1f}", flush=True)


def enrol_gallery(server: str, token: str, subjects: int, photos: list[bytes]) -> None:
    started = time.perf_counter()
    auth = {"authorization": f"Bearer {token}"}

    def one(i: int) -> None:
        status, body = call(f"{server}/api/v1/subjects", json.dumps({"name": f"person {i}"}).encode(),
                            {**auth, "content-type": "application/json"})
        assert status == 201, body
        subject = json.loads(body)["id"]
        for k in range(3):
            photo = photos[(3 * i + k) % len(photos)]
            status, body = call(f"{server}/api/v1/subjects/{subject}/faces", photo, {**auth, "content-type": "image/jpeg"})
            assert status == 201, body

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, range(subjects)))
    print(f"enrolled {subjects} subjects x 3 faces in {time.perf_counter() - started:.0f} s", flush=True)


def run(server: str, token: str, image: bytes, concurrency: int, requests: int, pid: int | None = None, label: str = "") -> float:
    headers = {"authorization": f"Bearer {token}", "content-type": "image/jpeg"}

    def one(_: int) -> tuple[float, float]:
        started = time.perf_counter()
        status, body = call(f"{server}/api/v1/detections", image, headers)
        if status != 201:
            raise SystemExit(f"upload failed: {status} {body[:200]!r}")
        # The server's own figure for the detector, to tell model time from the rest.
        return time.perf_counter() - started, json.loads(body)["duration_ms"]

    cpu_before = cpu_secs(pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - started
    cpu_ms = (cpu_secs(pid) - cpu_before) * 1000 / requests
    latencies = sorted(r[0] for r in results)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    detector_p50 = statistics.median(r[1] for r in results)
    print(f"{label}concurrency={concurrency:<3} requests={requests:<4} rps={requests / elapsed:7.1f} "
          f"p50_ms={p50:7.1f} p99_ms={p99:7.1f} detector_p50_ms={detector_p50:7.1f} "
          f"server_cpu_ms_per_request={cpu_ms:6.1f} server_rss_mib={rss_mib(pid):6.1f}", flush=True)
    return requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="http://127.0.0.1:8080")
    parser.add_argument("--image", required=True, help="a 640x480 JPEG")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--server-pid", type=int, help="the server's pid, for CPU time and memory")
    parser.add_argument("--gallery", type=int, default=0, help="subjects (3 faces each) to enrol before a second run")
    parser.add_argument("--photos", help="a folder of folders of JPEG face photos, for --gallery")
    parser.add_argument("--big-image", help="a large PNG, uploaded --big-concurrency times at once at the end")
    parser.add_argument("--big-concurrency", type=int, default=16)
    parser.add_argument("--reference", help="the reference service (benches/reference_service.py), run alternately with vigil")
    parser.add_argument("--reference-key", help="its API key")
    parser.add_argument("--reference-pid", type=int, help="its pid (workers included), for CPU time and memory")
    args = parser.parse_args()
    image = open(args.image, "rb").read()
    token = login(args.server)
    run(args.server, token, image, 1, 3)  # warm-up: plan cache, connections
    if args.reference:
        run(args.reference, args.reference_key, image, 2, 6)  # both workers
    ratios = {}
    for c in args.concurrency:
        vigil_rps = run(args.server, token, image, c, args.requests, args.server_pid, "gallery=0 ")
        if args.reference:
            reference_rps = run(args.reference, args.reference_key, image, c, args.requests,
                                args.reference_pid, "reference ")
            ratios[c] = vigil_rps / reference_rps
    for c, ratio in ratios.items():
        print(f"ratio_vs_reference@c{c}={ratio:.2f}", flush=True)
    if args.gallery:
        photos = [open(os.path.join(root, f), "rb").read()
                  for root, _, files in sorted(os.walk(args.photos)) for f in sorted(files) if f.endswith(".jpg")]
        enrol_gallery(args.server, token, args.gallery, photos)
        for c in args.concurrency:
            run(args.server, token, image, c, args.requests, args.server_pid, f"gallery={3 * args.gallery} ")
    if args.big_image:
        big_images(args.server, token, open(args.big_image, "rb").read(), args.big_concurrency, args.server_pid)


if __name__ == "__main__":
    main()
