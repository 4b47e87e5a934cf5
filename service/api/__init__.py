"""The HTTP door: the Flask app (create_app), keys and limits, one blueprint per resource, the
OpenAPI document, metrics, and what each gunicorn worker serves."""
