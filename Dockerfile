# The exchange's image: the `corpusx` command, for the API, the init step and witnesses.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY exchange ./exchange
COPY ledger ./ledger
COPY catalog ./catalog
COPY licensing ./licensing
COPY storage ./storage
RUN pip install --no-cache-dir . && useradd --create-home corpusx
# Mount points owned by the service user: Docker copies this ownership into new named volumes.
RUN mkdir -p /data /config /witness /public && chown corpusx /data /config /witness /public
USER corpusx
ENTRYPOINT ["corpusx"]
CMD ["--help"]
