#!/usr/bin/env python3
"""Times vigil's face recognizer against dlib itself on the same chips.

`make bench-recognizer` runs it after building crates/vigil-recognizer's
bench example in release mode. Both sides embed dlib's 150x150 chips of the
shared photos (the reference of `make recognizer-reference`): vigil through
its bench binary (a subprocess: its memory is its own), dlib-bin's
`compute_face_descriptor(chip)` in this process, one call per chip, one
thread. Rounds alternate which side goes first; figures are medians over
rounds (and, inside the vigil binary, over its own repetitions).

Also reported: CPU time per face (process user + system time: what the
machine pays, less sensitive than wall time to a loaded machine), vigil at
2 threads (one chip split by rows, and batches split by chips), alignment
on its own (vigil: the rectangle from CenterFace's detection and the shape
predictor, then the chip; dlib: its shape predictor in its detector's
rectangle, then `get_face_chip`), the whole path from the photo (dlib:
`compute_face_descriptor(img, shape)` with dlib's landmarks), and the
resident memory the models add.

The last line is machine-readable:
  ratio_vs_dlib=X   vigil ms/face ÷ dlib ms/face, network only, one thread
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# dlib's CPU network is single-threaded; make sure nothing under it is not.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import dlib  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def read_ppm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos].decode())
    pos += 1
    w, h = int(fields[1]), int(fields[2])
    return np.frombuffer(data, dtype=np.uint8, count=w * h * 3, offset=pos).reshape(h, w, 3).copy()


def load_reference(ref: Path):
    lines = (ref / "faces.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    col = {name: i for i, name in enumerate(header)}
    faces = []
    for line in lines[1:]:
        f = line.split("\t")
        faces.append({
            "chip": ref / f[col["chip"]],
            "image": ref / f[col["image"]],
            "landmarks": [float(v) for v in f[col["dlib_landmarks"]].split()],
            "rect": [int(float(v)) for v in f[col["dlib_rect"]].split()],
        })
    return faces


def time_dlib(net, predictor, chips, photos) -> dict:
    out = {}
    w0, c0 = time.perf_counter(), time.process_time()
    for chip in chips:
        net.compute_face_descriptor(chip)
    w1, c1 = time.perf_counter(), time.process_time()
    out["network"] = ((w1 - w0) * 1e3 / len(chips), (c1 - c0) * 1e3 / len(chips))
    w0, c0 = time.perf_counter(), time.process_time()
    for img, shape in photos:
        predictor(img, shape.rect)
    w1, c1 = time.perf_counter(), time.process_time()
    out["predictor"] = ((w1 - w0) * 1e3 / len(photos), (c1 - c0) * 1e3 / len(photos))
    w0, c0 = time.perf_counter(), time.process_time()
    for img, shape in photos:
        dlib.get_face_chip(img, shape, size=150, padding=0.25)
    w1, c1 = time.perf_counter(), time.process_time()
    out["chip"] = ((w1 - w0) * 1e3 / len(photos), (c1 - c0) * 1e3 / len(photos))
    w0, c0 = time.perf_counter(), time.process_time()
    for img, shape in photos:
        net.compute_face_descriptor(img, shape, 0, 0.25)
    w1, c1 = time.perf_counter(), time.process_time()
    out["align+embed"] = ((w1 - w0) * 1e3 / len(photos), (c1 - c0) * 1e3 / len(photos))
    return out


def run_vigil(bench: Path, *args: str) -> list[dict]:
    proc = subprocess.run([str(bench), *args], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in proc.stdout.splitlines()]


def median(values):
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path,
                        default=ROOT / "target" / "release" / "examples" / "bench")
    parser.add_argument("--models-dir", type=Path,
                        default=Path(os.environ.get("VIGIL_MODELS_DIR", ROOT / "models")))
    parser.add_argument("--rounds", type=int, default=5,
                        help="vigil/dlib rounds, alternating which goes first")
    parser.add_argument("--reps", type=int, default=3, help="repetitions inside each vigil run")
    parser.add_argument("--threads", default="1,2", help="vigil thread counts")
    args = parser.parse_args()

    ref = args.models_dir / "test-assets" / "recognizer"
    faces = load_reference(ref)
    chips = [read_ppm(f["chip"]) for f in faces]
    photos = []
    for f in faces:
        img = read_ppm(f["image"])
        pts = dlib.points()
        for i in range(5):
            pts.append(dlib.point(round(f["landmarks"][2 * i]), round(f["landmarks"][2 * i + 1])))
        rect = dlib.rectangle(*f["rect"])
        photos.append((img, dlib.full_object_detection(rect, pts)))

    rss0 = rss_bytes()
    net = dlib.face_recognition_model_v1(str(args.models_dir / "dlib_face_recognition_resnet_model_v1.dat"))
    net.compute_face_descriptor(chips[0])
    predictor = dlib.shape_predictor(str(args.models_dir / "shape_predictor_5_face_landmarks.dat"))
    predictor(*(lambda p: (p[0], p[1].rect))(photos[0]))
    dlib_rss = rss_bytes() - rss0
    # vigil's memory in a process of its own that does nothing else.
    memory = next(r for r in run_vigil(args.bench, "--memory") if r["kind"] == "memory")

    print(f"{len(chips)} chips of {ref}; {args.rounds} rounds; dlib {dlib.__version__}, "
          f"vigil {args.bench}", flush=True)
    vigil_runs: dict = {}
    dlib_runs: dict = {}
    model: dict = {}
    for round_ in range(args.rounds):
        order = ["vigil", "dlib"] if round_ % 2 == 0 else ["dlib", "vigil"]
        for side in order:
            if side == "vigil":
                for rec in run_vigil(args.bench, "--reps", str(args.reps), "--threads", args.threads):
                    if rec["kind"] == "time":
                        key = (rec["mode"], rec["threads"])
                        vigil_runs.setdefault(key, []).append((rec["ms_per_face"], rec["cpu_ms_per_face"]))
                    elif rec["kind"] == "model":
                        model = rec
            else:
                for key, value in time_dlib(net, predictor, chips, photos).items():
                    dlib_runs.setdefault(key, []).append(value)
        v1 = vigil_runs[("network", 1)][-1][0]
        d1 = dlib_runs["network"][-1][0]
        print(f"  round {round_ + 1}: vigil {v1:.2f} ms/face, dlib {d1:.2f} ms/face", flush=True)

    def med(runs, i):
        return median([r[i] for r in runs])

    print()
    print("ms per face, medians (wall | CPU):")
    print(f"{'who':<8}{'mode':<14}{'threads':>8}{'wall ms':>10}{'cpu ms':>10}")
    for (mode, threads), runs in sorted(vigil_runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{'vigil':<8}{mode:<14}{threads:>8}{med(runs, 0):>10.2f}{med(runs, 1):>10.2f}")
    for mode, runs in dlib_runs.items():
        print(f"{'dlib':<8}{mode:<14}{1:>8}{med(runs, 0):>10.2f}{med(runs, 1):>10.2f}")

    macs = model.get("macs_per_chip", 0)
    vigil_1 = med(vigil_runs[("network", 1)], 0)
    vigil_cpu = med(vigil_runs[("network", 1)], 1)
    dlib_1 = med(dlib_runs["network"], 0)
    dlib_cpu = med(dlib_runs["network"], 1)
    print()
    print(f"arithmetic: {macs / 1e9:.3f} GMAC per face; vigil {macs / vigil_cpu / 1e6:.1f} GMAC/s "
          f"per CPU second, dlib {macs / dlib_cpu / 1e6:.1f}")
    vigil_rss = memory["rss_after_first_inference"] - memory["rss_before_load"]
    vigil_peak = memory["peak_rss_after_first_inference"] - memory["rss_before_load"]
    predictor_rss = memory["rss_after_predictor"] - memory["rss_before_load"]
    print(f"resident memory added by the models (predictor and network), loaded and run once: "
          f"vigil {vigil_rss / 2**20:.1f} MiB (peak +{vigil_peak / 2**20:.1f} MiB; predictor "
          f"{predictor_rss / 2**20:.1f} MiB resident, {model.get('predictor_bytes', 0) / 2**20:.1f} MiB of trees; "
          f"packed weights {model.get('weight_bytes', 0) / 2**20:.1f} MiB, "
          f"one working arena {model.get('arena_bytes', 0) / 2**20:.1f} MiB), dlib {dlib_rss / 2**20:.1f} MiB")
    print(f"cpu_ratio_vs_dlib={vigil_cpu / dlib_cpu:.3f}")
    print(f"ratio_vs_dlib={vigil_1 / dlib_1:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
