# xmr images, one target each (there is no Docker daemon on the development machines: tests/test_deploy.py
# parses this file):
#   docker build --target serve -t xmr-serve .       the API: `pip install .` only, no torch (~340 MB of packages)
#   docker build --target indexer -t xmr-indexer .   xmr train / eval / export / index build: the train extra
# CPU by default; --build-arg DEVICE=gpu swaps faiss-cpu/onnxruntime for their GPU builds (requirements-gpu.txt)
# and installs torch's CUDA build in the indexer.
FROM python:3.11-slim AS source
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1
WORKDIR /app
COPY pyproject.toml README.md requirements-gpu.txt ./
COPY xmr ./xmr
COPY bundle ./bundle
COPY models ./models
COPY indexer ./indexer
COPY service ./service

# The serving image: base dependencies only (FastAPI, ONNX Runtime, FAISS); torch is never installed.
FROM source AS serve
ARG DEVICE=cpu
RUN pip install . \
    && if [ "$DEVICE" = gpu ]; then pip uninstall -y faiss-cpu onnxruntime && pip install -r requirements-gpu.txt; fi
ENV XMR_ROOT=/data/bundles \
    XMR_HOST=0.0.0.0 \
    XMR_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["xmr", "serve", "--root", "/data/bundles", "--host", "0.0.0.0", "--port", "8000"]

# The indexer/training image: torch pinned and installed first (its CPU build unless DEVICE=gpu, so pip
# never pulls a multi-GB CUDA build by accident; see Makefile), then the train extra.
FROM source AS indexer
ARG DEVICE=cpu
ARG TORCH=torch==2.13.0
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
RUN if [ "$DEVICE" = gpu ]; then pip install "$TORCH"; else pip install --index-url "$TORCH_CPU_INDEX" "$TORCH"; fi \
    && pip install ".[train]" \
    && if [ "$DEVICE" = gpu ]; then pip uninstall -y faiss-cpu onnxruntime && pip install -r requirements-gpu.txt; fi
ENV XMR_ROOT=/data/bundles
CMD ["xmr", "index", "build", "/data/demo/manifest.jsonl", "--collection", "demo", "--root", "/data/bundles", "--model", "/data/runs/demo"]
