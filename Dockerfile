# fireline service image: `docker build -t fireline .` then `docker run fireline run`.
# Stage 1 builds a virtualenv with pinned dependencies; stage 2 copies only that.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/fireline
COPY pyproject.toml constraints.txt README.md ./
COPY fireline ./fireline
COPY agents ./agents
COPY detectors ./detectors
COPY playbooks ./playbooks
RUN /opt/fireline/bin/pip install -c constraints.txt . \
    && /opt/fireline/bin/fireline --version

FROM python:3.11-slim
LABEL org.opencontainers.image.title="fireline" \
      org.opencontainers.image.description="Event-driven AIOps incident responder for ML platforms"
RUN useradd --system --uid 10001 --create-home --home-dir /home/fireline fireline
COPY --from=build /opt/fireline /opt/fireline
ENV PATH=/opt/fireline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FIRELINE_HTTP_HOST=0.0.0.0 \
    FIRELINE_HTTP_PORT=6066
USER fireline
WORKDIR /home/fireline
EXPOSE 6066
# /healthz answers as soon as the worker process is up; /readyz is for load balancers.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FIRELINE_HTTP_PORT', '6066'), timeout=2)"
ENTRYPOINT ["fireline"]
CMD ["run"]
