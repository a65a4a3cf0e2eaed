"""The WSGI application gunicorn serves (``config.wsgi``).

Every request goes through Django's handler with ``settings.MIDDLEWARE``, except answers
POSTed to the public survey pages (``/s/<token>/``): those go through a second handler with
``settings.SURVEY_ANSWER_MIDDLEWARE``, the layers such a request needs (security headers,
content security policy, Content-Length, CSRF, frame options, the database-outage page). The
others (sessions, sign-in, messages, static files, htmx, login throttling) do nothing for an
anonymous form post, yet were an eighth of an answer's CPU (bench/survey_post_cost.py);
answers are the one request a campaign sends by the thousand in a minute. Before that
handler, ``surveys.answer_wsgi.first_answer`` records the common case (a valid first answer)
without Django's request cycle and passes everything else on.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402 - configured by get_wsgi_application
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from surveys.answer_wsgi import first_answer  # noqa: E402 - needs the apps loaded


class _Handler(WSGIHandler):
    """Django's WSGI handler with the given middleware instead of ``settings.MIDDLEWARE``."""

    def __init__(self, middleware: list[str]):
        self.middleware_paths = middleware
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = self.middleware_paths  # what Django's loader reads
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


survey_answers = _Handler(settings.SURVEY_ANSWER_MIDDLEWARE)


def application(environ, start_response):
    if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").startswith("/s/"):
        response = first_answer(environ, start_response)  # the common case, without Django
        if response is not None:
            return response
        return survey_answers(environ, start_response)
    return django_application(environ, start_response)
