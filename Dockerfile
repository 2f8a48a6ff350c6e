# The web, worker and beat image (production shape). The trainer is not in it: it runs in pods.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dashboard dashboard
COPY jobs jobs
COPY providers providers
COPY worker worker
COPY trainer trainer
COPY templates templates
COPY static static
COPY manage.py ./
RUN pip install --no-cache-dir .
RUN useradd --create-home tuneboard && mkdir -p /app/var && chown tuneboard /app/var
USER tuneboard
EXPOSE 8000
CMD ["uvicorn", "dashboard.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
