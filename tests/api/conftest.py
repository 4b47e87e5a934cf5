"""The API tests' log capture."""

import io
import logging

import pytest

from service.logs import JsonFormatter


@pytest.fixture
def log_text():
    """What the `heeldrop` logger writes during the test, through the service's formatter."""
    logger = logging.getLogger("heeldrop")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    yield stream.getvalue
    logger.removeHandler(handler)
