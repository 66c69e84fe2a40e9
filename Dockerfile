# syntax=docker/dockerfile:1
# Build: docker build -t feedback-api .
# Run:   docker run -p 8000:8000 -e FEEDBACK_DATABASE_URL=postgresql+asyncpg://… feedback-api
#        (without FEEDBACK_DATABASE_URL it runs the embedded PostgreSQL in /data: mount a volume)

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FEEDBACK_DATA_DIR=/data
RUN groupadd --system feedback && useradd --system --gid feedback --home-dir /app feedback \
    && mkdir -p /app /data && chown feedback:feedback /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
# `feedback-api migrate` and `serve` find alembic.ini in the working directory.
COPY alembic.ini ./
COPY migrations ./migrations
USER feedback
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)" || exit 1
CMD ["feedback-api", "serve", "--host", "0.0.0.0", "--port", "8000"]
