"""Submits videos to vigil servers (round robin), waits for every job, and
prints wall time, frames per second and the servers' CPU seconds per frame.
Used by scripts/bench-videos.sh; standard library only."""

import argparse
import json
import os
import time
import urllib.request
import uuid

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def call(url, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read() or b"null")


def token(base):
    name = "b" + uuid.uuid4().hex[:12]
    account = {"user_name": name, "email": f"{name}@example.org", "password": "correct horse battery"}
    headers = {"content-type": "application/json"}
    call(f"{base}/api/v1/auth/register", "POST", json.dumps(account).encode(), headers)
    login = {"login": name, "password": account["password"]}
    return call(f"{base}/api/v1/auth/login", "POST", json.dumps(login).encode(), headers)["access_token"]


def submit(base, tok, clip, fps):
    boundary = uuid.uuid4().hex
    with open(clip, "rb") as f:
        video = f.read()
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"fps\"\r\n\r\n{fps}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.mp4\"\r\n"
        "Content-Type: video/mp4\r\n\r\n"
    ).encode() + video + f"\r\n--{boundary}--\r\n".encode()
    headers = {"authorization": f"Bearer {tok}", "content-type": f"multipart/form-data; boundary={boundary}"}
    return call(f"{base}/api/v1/videos", "POST", body, headers)["id"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True)
    parser.add_argument("--clip", required=True)
    parser.add_argument("--fps", default="2")
    parser.add_argument("--videos", type=int, default=1)
    parser.add_argument("servers", nargs="+", help="PORT:PID of each server")
    args = parser.parse_args()
    servers = [(f"http://127.0.0.1:{s.split(':')[0]}", int(s.split(":")[1])) for s in args.servers]
    tokens = [token(base) for base, _ in servers]
    cpu_before = [cpu_seconds(pid) for _, pid in servers]
    started = time.monotonic()
    jobs = []
    for i in range(args.videos):
        base, _ = servers[i % len(servers)]
        tok = tokens[i % len(servers)]
        jobs.append((base, tok, submit(base, tok, args.clip, args.fps)))
    frames = 0
    for base, tok, job in jobs:
        while True:
            view = call(f"{base}/api/v1/jobs/{job}", headers={"authorization": f"Bearer {tok}"})
            if view["state"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.2)
        if view["state"] != "done":
            raise SystemExit(f"job {job} ended {view['state']}: {view.get('error')}")
        frames += view["progress"]["done"]
    wall = time.monotonic() - started
    cpu = sum(cpu_seconds(pid) - before for (_, pid), before in zip(servers, cpu_before))
    print(
        f"{args.label}: {frames} frames in {wall:.1f} s = {frames / wall:.2f} frames/s; "
        f"server CPU {cpu:.1f} s = {1000 * cpu / max(frames, 1):.0f} ms per frame"
    )


if __name__ == "__main__":
    main()
