# The analyzer: `docker build -t analyzer .`, then
#   docker run -v $PWD/examples/binance.toml:/etc/analyzer/analyzer.toml:ro -p 9108:9108 analyzer \
#     collect -c /etc/analyzer/analyzer.toml
# docker-compose.yml builds it and runs it next to Prometheus, Alertmanager and Grafana.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/analyzer
# The package and the SQL it reads at run time (analyzer/store/schema.py: sql/ beside analyzer/).
COPY pyproject.toml README.md ./
COPY sql/ sql/
COPY analyzer/ analyzer/
# the demo watches examples/portfolio.toml (the Investor dashboard's data)
COPY examples/ examples/
# Editable, so that analyzer/ keeps sql/ beside it (a wheel would carry analyzer/ alone).
RUN pip install -e . && analyzer --help > /dev/null

RUN useradd --system --create-home --home-dir /var/lib/analyzer --uid 10001 analyzer
USER analyzer
# data_dir = "data" in a config is relative to here (the compose file mounts a volume)
WORKDIR /var/lib/analyzer

EXPOSE 9108
ENTRYPOINT ["analyzer"]
CMD ["collect", "-c", "/etc/analyzer/analyzer.toml"]
