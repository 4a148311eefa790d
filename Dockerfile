# The service image: `est serve` on port 8000. Migrations and demo data are separate commands
# (see compose.yaml), so several replicas never race to migrate.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    EST_HOST=0.0.0.0 EST_PORT=8000 EST_ENVIRONMENT=production

# Pango, HarfBuzz's subsetter and a font: the weekly report's PDF (WeasyPrint)
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 est
WORKDIR /srv/est

COPY pyproject.toml README.md ./
COPY app ./app
COPY geo ./geo
COPY clustering ./clustering
COPY migrations ./migrations
COPY data ./data
COPY alembic.ini ./
RUN pip install --upgrade pip && pip install -e .

USER est
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; \
sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["est", "serve"]
