# mirrorgate image for `mirrorgate run --kubernetes` (deploy/kubernetes). Build from the repository root:
#   docker build -t REGISTRY/mirrorgate:TAG .
# Runtime only: the package and its `kubernetes` extra, no dev tools, no pip cache, no source tree.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The UID/GID the Deployment runs as (runAsUser/runAsGroup 65532); no home, no login shell.
RUN groupadd --system --gid 65532 mirrorgate \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin mirrorgate

WORKDIR /src
COPY pyproject.toml README.md ./
COPY mirrorgate ./mirrorgate
RUN pip install --no-cache-dir '.[kubernetes]' \
 && cd / && rm -rf /src

WORKDIR /
USER 65532:65532
EXPOSE 80 8000 8080 9901
ENTRYPOINT ["mirrorgate"]
CMD ["run", "--kubernetes", "--admin=0.0.0.0:9901", "--workers=1"]
