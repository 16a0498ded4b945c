# dedupdb as a container: `docker run --rm -v ~/Pictures:/data:ro -v dedupdb-state:/state dedupdb index /data`
# Stage 1 builds the wheel; stage 2 installs only that wheel (with its migrations inside) on a
# slim Python, runs as the non-root user `dedup` (UID 1000) and never writes next to the photos.
# See DEPLOYMENT.md.

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
WORKDIR /src
RUN pip install --no-cache-dir "build==1.2.2.post1"
COPY pyproject.toml README.md LICENSE alembic.ini ./
COPY dedupdb ./dedupdb
COPY migrations ./migrations
RUN python -m build --wheel --outdir /dist

FROM python:${PYTHON_VERSION}-slim-bookworm
# The release version; CI passes the tag's version (tests/test_shipping.py keeps this default
# equal to pyproject.toml's).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="dedupdb" \
      org.opencontainers.image.description="Find duplicate and near-duplicate images, remember them in a database, and keep the best copy." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/dedupdb/dedupdb" \
      org.opencontainers.image.documentation="https://github.com/dedupdb/dedupdb/blob/main/DEPLOYMENT.md"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEDUPDB_DB=/state/dedupdb.sqlite \
    DEDUPDB_STUCK_AFTER=900

RUN groupadd --gid 1000 dedup \
    && useradd --uid 1000 --gid 1000 --home-dir /home/dedup --create-home --shell /usr/sbin/nologin dedup \
    && mkdir -p /data /state /output \
    && chown dedup:dedup /state /output

COPY --from=build /dist/ /tmp/dist/
# The wheel with PostgreSQL (psycopg), HEIC/AVIF (pillow-heif), the review UI (serve) and Dask (the
# `dask scheduler` / `dask worker` of docker-compose.yml's cluster profile). The wheel is this
# build's own file, so DL3013's "pin the version" does not apply.
# hadolint ignore=DL3013
RUN set -- /tmp/dist/dedupdb-*.whl \
    && pip install --no-cache-dir "$1[postgres,heif,serve,dask]" \
    && rm -rf /tmp/dist

# Numeric, so that Kubernetes' runAsNonRoot can verify it: 1000 is `dedup`.
USER 1000:1000
WORKDIR /output
VOLUME ["/data", "/state", "/output"]

# Proves the CLI starts and the database opens (the first `index` run creates it), and fails
# while a run has made no progress for DEDUPDB_STUCK_AFTER seconds (a hung network share, say):
# `docker run -e DEDUPDB_STUCK_AFTER=1800 ...` changes it.
HEALTHCHECK --interval=5m --timeout=30s --start-period=30s --retries=3 \
    CMD ["dedupdb", "status", "--json", "--check-stuck"]

ENTRYPOINT ["dedupdb"]
CMD ["--help"]
