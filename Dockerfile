# xmr: one image for the API and the indexer job. CPU by default; --build-arg EXTRAS=gpu for CUDA builds.
FROM python:3.11-slim

ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    XMR_ROOT=/data/bundles \
    XMR_HOST=0.0.0.0 \
    XMR_PORT=8000

WORKDIR /app
# torch is pinned and installed first so pip never pulls a CUDA build by accident (see Makefile).
RUN pip install torch==2.13.0
COPY pyproject.toml README.md ./
COPY xmr ./xmr
COPY models ./models
COPY indexer ./indexer
COPY service ./service
RUN pip install ".${EXTRAS:+[$EXTRAS]}"

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["xmr", "serve", "--root", "/data/bundles", "--host", "0.0.0.0", "--port", "8000"]
