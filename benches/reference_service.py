"""The straightforward Python service vigil is measured against (issue 21).

`make bench-api` drives it with the same load as vigil, in the same run:
`POST /api/v1/detections` with a JPEG body and `Authorization: Bearer KEY`
does, per request, the work an upload does in vigil, written the way a
Python team would write it:

- the API key looked up by its SHA-256 and one unit of quota taken
  atomically (`find_one_and_update`), 401/429 otherwise;
- the image decoded (Pillow) and CenterFace run at 640 (onnxruntime, one
  thread per worker, the same model file and the same pre- and
  post-processing as scripts/bench_detector.py);
- the image written to disk and fsynced;
- a detection and, when a face was found, an alarm inserted (motor).

Run with `uvicorn --workers 2` (one per core). `--seed` (a separate
command) creates the API key and prints it.
"""

import argparse
import asyncio
import hashlib
import io
import os
import secrets
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

DATABASE = os.environ.get("REFERENCE_DATABASE", "reference")
DATA_DIR = Path(os.environ.get("REFERENCE_DATA_DIR", "/tmp/reference-data"))
MODEL = ROOT / "models" / "centerface.onnx"


def create_app():
    from fastapi import FastAPI, HTTPException, Request
    from motor.motor_asyncio import AsyncIOMotorClient
    from PIL import Image
    from pymongo import ReturnDocument

    from bench_detector import OrtCenterFace

    app = FastAPI()
    db = AsyncIOMotorClient(os.environ["MONGODB_URI"])[DATABASE]
    detector = OrtCenterFace(MODEL, threads=1)
    DATA_DIR.mkdir(parents=True, exist_ok=True)

    def detect(body: bytes):
        image = Image.open(io.BytesIO(body)).convert("RGB")
        return detector.detect(image, 640)

    def store(path: Path, body: bytes) -> None:
        with open(path, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())

    @app.post("/api/v1/detections", status_code=201)
    async def upload(request: Request):
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise HTTPException(401, "unauthenticated")
        digest = hashlib.sha256(auth[7:].encode()).hexdigest()
        key = await db.api_keys.find_one_and_update(
            {"_id": digest, "quota": {"$gt": 0}},
            {"$inc": {"quota": -1}},
            return_document=ReturnDocument.AFTER,
        )
        if key is None:
            raise HTTPException(429, "no such key, or quota exhausted")
        body = await request.body()
        started = time.perf_counter()
        try:
            faces = await asyncio.to_thread(detect, body)
        except Exception as err:  # Pillow's many ways of saying "not an image"
            raise HTTPException(422, f"invalid image: {err}")
        duration_ms = (time.perf_counter() - started) * 1000
        image_id = f"{uuid.uuid4().hex}.jpg"
        await asyncio.to_thread(store, DATA_DIR / image_id, body)
        now = datetime.now(timezone.utc)
        detection = {
            "user_id": key["user_id"],
            "created_at": now,
            "image": image_id,
            "faces": [{"box": [float(v) for v in face[:4]], "score": float(face[4])} for face in faces],
            "duration_ms": duration_ms,
        }
        inserted = await db.detections.insert_one(detection)
        if len(faces):
            await db.alarms.insert_one({
                "message": f"{len(faces)} face(s) detected",
                "date": now,
                "img": image_id,
                "detection_id": inserted.inserted_id,
                "user_id": key["user_id"],
            })
        return {"id": str(inserted.inserted_id), "face_count": len(faces), "duration_ms": duration_ms}

    @app.get("/readyz")
    async def ready():
        await db.command("ping")
        return {"status": "ready"}

    return app


def seed() -> None:
    """Creates one API key with a large quota and prints it."""
    from pymongo import MongoClient

    key = secrets.token_urlsafe(24)
    MongoClient(os.environ["MONGODB_URI"])[DATABASE].api_keys.insert_one({
        "_id": hashlib.sha256(key.encode()).hexdigest(),
        "user_id": "bench",
        "quota": 1_000_000,
    })
    print(key)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", action="store_true", help="create the API key and print it")
    if parser.parse_args().seed:
        seed()
else:
    app = create_app()
