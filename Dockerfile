FROM python:3.11-slim
WORKDIR /srv/gateway
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY schemas ./schemas
RUN pip install --no-cache-dir -e .
EXPOSE 8080
CMD ["gateway", "serve"]
