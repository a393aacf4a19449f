# TorchServe 0.12.0 with the runtime the handler is tested on: Python 3.11, torch 2.13.0 (CPU), Java 17.
#
# Not FROM pytorch/torchserve:0.12.0-cpu: that image is built with Python 3.9 (the default of its build_image.sh), and
# the handler needs Python >= 3.10 (`bytes | bytearray` at run time, zip(strict=True)) and the torch it was trained
# with. The TorchServe version is the same pin as pyproject.toml (a test keeps them equal).
#
# Build context: the repository root (`docker compose build`, or
#   docker build -f deploy/docker/torchserve.Dockerfile -t digits-torchserve .)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The model archives, built from the committed weights of every version (model_store/v*/weights.pt). Kubernetes
# serves these; docker-compose.yml mounts the host's model_store/ over them.
FROM ${PYTHON_IMAGE} AS archives
RUN pip install --no-cache-dir torch-model-archiver==0.12.0
WORKDIR /src
COPY handler/ handler/
COPY training/__init__.py training/archive.py training/
COPY model_store/ model_store/
RUN for weights in model_store/v*/weights.pt; do \
        version="$(basename "$(dirname "$weights")")"; \
        python -m training.archive --version "${version#v}" --weights "$weights" --out /archives || exit 1; \
    done

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
# The CPU build of torch (the default index would bring a multi-GB CUDA build). TORCH_WHEELS: a folder holding the CPU
# wheel, mounted into the build where download.pytorch.org is out of reach (make compose-check): torch alone from
# there, without its dependencies, then those from the package index (torch is then already satisfied).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_WHEELS=
RUN if [ -n "$TORCH_WHEELS" ]; then \
        pip install --no-index --no-deps --find-links="$TORCH_WHEELS" torch==2.13.0 && pip install torch==2.13.0; \
    else \
        pip install torch==2.13.0 --index-url ${TORCH_INDEX_URL}; \
    fi
# pyyaml: TorchServe's worker imports it (ts/utils/util.py) without declaring it; without it every worker dies at start
RUN pip install torchserve==0.12.0 "numpy>=2.0,<3" "pillow>=11,<14" "psutil>=5.9" "httpx>=0.28,<1" \
        "pydantic-settings>=2.6,<3" "pyyaml>=6"
RUN useradd --uid 10001 --user-group --create-home app

# deploy.container imports deploy/, serving/, records/ and settings.py only (a test follows its imports)
WORKDIR /app
COPY config.properties settings.py ./
COPY deploy/ deploy/
COPY records/ records/
COPY serving/ serving/
COPY --from=archives /archives/ /srv/model_store/
# TS_HOME: TorchServe's working directory, where it writes key_file.json (a volume shared with the UI in compose)
RUN mkdir -p /srv/torchserve && chown app:app /srv/torchserve
USER app
# Inside the container all three APIs listen on every interface; config.properties keeps 127.0.0.1 for local runs.
ENV TS_HOST=0.0.0.0 TS_HOME=/srv/torchserve MODEL_STORE=/srv/model_store
EXPOSE 8080 8081 8082
CMD ["python", "-m", "deploy.container", "serve"]
