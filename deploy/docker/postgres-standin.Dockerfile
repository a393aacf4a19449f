# A stand-in for the official postgres image, made from Debian's PostgreSQL: for `make compose-check` only, on machines
# that reach Debian's mirror but no container registry. It honours the part of the official image's contract that
# docker-compose.yml uses: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, the scripts in /docker-entrypoint-initdb.d
# (run once, when the data folder is new), pg_isready on PATH, the data in /var/lib/postgresql/data.
# Production runs the official image (docker-compose.yml); this one is never pushed anywhere.
#   podman build -f deploy/docker/postgres-standin.Dockerfile --build-arg BASE_IMAGE=<a Debian bookworm image> .
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# Debian's package would create and start a cluster "main" of its own; the entry point makes the one we want.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY deploy/docker/postgres-standin-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# the official image's choice: SIGINT is PostgreSQL's "fast" shutdown
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
