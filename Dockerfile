FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=smartalex.settings.production
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN SECRET_KEY=build-only-$(head -c 48 /dev/urandom | base64) python manage.py collectstatic --noinput
RUN useradd --system --home /app smartalex && mkdir -p /app/var && chown smartalex /app/var
USER smartalex
EXPOSE 8000 5060/udp 5060/tcp 5061/tcp
CMD ["gunicorn", "smartalex.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
