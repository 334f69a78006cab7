# fireline service image: `docker build -t fireline .` then `docker run fireline run`.
# Stage 1 builds a virtualenv with pinned dependencies; stage 2 copies only that.
# The base is a build argument: any image with python3 (3.11+) and its venv module,
# e.g. scripts/test-image builds one from Debian without a registry.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python3 -m venv /opt/fireline
# The dependencies first, in a layer of their own: a code change rebuilds only the
# small layer below. Every version is pinned by constraints.txt (hence no x==1.2 here).
COPY pyproject.toml constraints.txt ./
RUN python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt \
    && /opt/fireline/bin/pip install -c constraints.txt -r requirements.txt
COPY README.md ./
COPY fireline ./fireline
COPY agents ./agents
COPY detectors ./detectors
COPY playbooks ./playbooks
RUN /opt/fireline/bin/pip install --no-deps -c constraints.txt . \
    && /opt/fireline/bin/pip check \
    && /opt/fireline/bin/fireline --version

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="fireline" \
      org.opencontainers.image.description="Event-driven AIOps incident responder for ML platforms"
# A fixed uid (10001) so Kubernetes' runAsNonRoot can check it. fireline writes only
# its data directory and /tmp (matplotlib's font cache): volumes in deploy/k8s, where
# the root filesystem is read-only.
RUN groupadd --system --gid 10001 fireline \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/fireline fireline \
    && mkdir -p /var/lib/fireline \
    && chown fireline:fireline /var/lib/fireline
COPY --from=build /opt/fireline /opt/fireline
ENV PATH=/opt/fireline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FIRELINE_HTTP_HOST=0.0.0.0 \
    FIRELINE_HTTP_PORT=6066 \
    FIRELINE_DATA_DIR=/var/lib/fireline \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /home/fireline
EXPOSE 6066
# /healthz answers as soon as the worker process is up; /readyz is for load balancers.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FIRELINE_HTTP_PORT', '6066'), timeout=2)"]
ENTRYPOINT ["fireline"]
CMD ["run"]
