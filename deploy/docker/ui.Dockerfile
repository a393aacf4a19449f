# The NiceGUI page. Build context: the repository root (`docker compose build`, or
#   docker build -f deploy/docker/ui.Dockerfile -t digits-ui .)
# No torch here: the page only talks to TorchServe over HTTP (numpy and Pillow draw the Why? heatmaps).
# Pins as in pyproject.toml (a test keeps them equal).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install "nicegui>=3.0,<4" "psycopg[binary,pool]>=3.2,<4" "httpx>=0.28,<1" "pydantic-settings>=2.6,<3" \
        "psutil>=5.9" "numpy>=2.0,<3" "pillow>=11,<14"
RUN useradd --uid 10001 --user-group --create-home app

# python -m ui.main imports ui/, app/, db/, serving/, records/ and settings.py, never deploy/ (a test follows its imports);
# config.properties gives it TorchServe's ports, with TS_HOST naming the TorchServe container or Service. The
# operator CLI (python -m app.cli) runs here too.
WORKDIR /app
COPY config.properties settings.py ./
COPY records/ records/
COPY serving/ serving/
COPY db/ db/
COPY app/ app/
COPY ui/ ui/
# NiceGUI keeps its storage in .nicegui/ under the working directory; var/ holds dev-only fallbacks
RUN mkdir -p .nicegui var && chown app:app .nicegui var
# The same user id as the TorchServe image: key_file.json is readable by its owner only
USER app
ENV UI_HOST=0.0.0.0
EXPOSE 8501
CMD ["python", "-m", "ui.main"]
