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
COPY setup.py ./
# A C compiler only while installing: it builds catalog._sketch (the overlap sketch's loops).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && python -c "import catalog._sketch" && useradd --create-home corpusx
# Mount points owned by the service user: Docker copies this ownership into new named volumes.
RUN mkdir -p /data /config /witness /public && chown corpusx /data /config /witness /public
USER corpusx
ENTRYPOINT ["corpusx"]
CMD ["--help"]
