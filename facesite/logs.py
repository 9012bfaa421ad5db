"""One JSON object per log line, so log collectors can read the fields without parsing prose."""

import json
import logging

request_logger = logging.getLogger("facesite.requests")


class ClientMistakesAsWarnings(logging.Filter):
    """Django logs each suspicious request (a disallowed Host, too many form fields or files, ...) as
    an ERROR with a traceback, so anyone on the network could fill the logs with them. They are the
    client's mistakes, answered with a 400 that the request line records: one WARNING line each."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security."):
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def log_request(
    *, method: str | None, path: str | None, status: int, ms: float, client: str | None, bytes_in: int
) -> None:
    """The one line per request, whether Django answered it or the transport did (facesite/transport.py).
    Never bodies, query strings or headers, so neither images nor API keys reach the logs."""
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "ms": round(ms, 1),
        "client": client,
        "bytes_in": bytes_in,
    }
    request_logger.info("request", extra={"fields": fields})
