# The API and projector image (no ML stack: workers get their own image with the
# `workers` extra when they exist).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY graph ./graph
COPY services ./services
COPY workers ./workers
RUN pip install --no-cache-dir .
ENV KNOBS_HOME=/var/lib/knobs
USER nobody
EXPOSE 8000
CMD ["knobs", "serve", "--host", "0.0.0.0", "--port", "8000"]
