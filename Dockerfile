# The knobs image. The API and projector install without the ML stack; the dispatcher and
# workers build with EXTRAS="[workers]" (torch, transformers, peft, dramatiq, ...).
FROM python:3.11-slim
ARG EXTRAS=""
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY graph ./graph
COPY services ./services
COPY workers ./workers
RUN pip install --no-cache-dir ".${EXTRAS}" \
    && mkdir -p /var/lib/knobs/artifacts && chown -R nobody /var/lib/knobs
ENV KNOBS_HOME=/var/lib/knobs
USER nobody
EXPOSE 8000
CMD ["knobs", "serve", "--host", "0.0.0.0", "--port", "8000"]
