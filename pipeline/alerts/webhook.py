"""POST a JSON body to the webhook whose URL is in an environment variable (stdlib only).

A timeout per attempt, bounded retries with doubling backoff on network errors, timeouts,
HTTP 429 and 5xx; other HTTP errors are not retried. Messages name the variable and the
host, never the URL (a Slack webhook URL is a secret).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pipeline.alerts.rules import Webhook
from pipeline.errors import EXIT_USER_ERROR, PipelineError


class DeliveryError(PipelineError):
    """The webhook did not take the message."""


class NoWebhook(DeliveryError):
    """The variable naming the webhook is not set, or holds no http(s) URL."""

    exit_code = EXIT_USER_ERROR


def webhook_url(webhook: Webhook, env: Mapping[str, str] | None = None) -> str:
    url = (env if env is not None else os.environ).get(webhook.url_env, "").strip()
    if not url:
        raise NoWebhook(f"set {webhook.url_env} to the webhook URL to send alerts")
    if urlsplit(url).scheme not in ("http", "https"):
        raise NoWebhook(f"{webhook.url_env} must hold an http(s) URL")
    return url


def post(
    webhook: Webhook,
    body: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
) -> int:
    """Deliver `body`; return the number of attempts. Raises DeliveryError."""
    url = webhook_url(webhook, env)
    where = f"{webhook.url_env} ({urlsplit(url).netloc})"
    data = json.dumps(body).encode("utf-8")
    attempts = webhook.retries + 1
    problem = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=webhook.timeout_seconds) as response:
                response.read()
            return attempt
        except urllib.error.HTTPError as error:
            problem = f"HTTP {error.code}"
            if error.code != 429 and error.code < 500:
                break  # the request itself is refused: a retry would be too
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            timed_out = isinstance(reason, TimeoutError) or "timed out" in str(reason)
            problem = f"no answer in {webhook.timeout_seconds:g} s" if timed_out else str(reason)
        if attempt < attempts:
            time.sleep(webhook.backoff_seconds * 2 ** (attempt - 1))
    raise DeliveryError(
        f"alerts not delivered to the webhook in {where}: {problem} "
        f"(after {attempt} attempt{'s' if attempt > 1 else ''})"
    )
