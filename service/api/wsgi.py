"""The WSGI entry point gunicorn imports: one app per worker process."""

from service.api.app import create_app

app = create_app()
