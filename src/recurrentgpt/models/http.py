"""A small HTTP client for OpenAI-compatible servers: one place for errors, retries and timeouts.

429 and 5xx are retried (tenacity) with exponential backoff or the server's Retry-After, a bounded
number of times; 401/403 become ``ModelAuthError``;
refused connections, timeouts and stalls become ``ModelConnectionError``; other 4xx become
``RejectedRequest`` so callers can fall back (e.g. to a simpler response_format). An address that answers with
a web page instead of the API is a ``ConfigError`` naming the address. The key is the caller's (keys.py): this
client reads no environment variable, so no key reaches a server it was not chosen for.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Any, Iterator

import httpx
import tenacity

from ..errors import ConfigError, ModelAuthError, ModelConnectionError, ModelError, RejectedRequest

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class _TryAgain(Exception):
    """A failure before the answer started that another try may cure: a 429 or 5xx, a dropped connection."""

    def __init__(self, error: ModelError | None = None, *, status: int = 0, detail: str = "", retry_after: str = ""):
        super().__init__(detail)
        self.error, self.status, self.detail, self.retry_after = error, status, detail, retry_after

    def final(self, tries: int) -> ModelError:
        """The error to raise when no try is left."""
        return self.error or ModelError(f"the model server kept failing (HTTP {self.status} after {tries} tries): "
                                        f"{self.detail}")


class HTTPClient:
    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
    ):
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key or ""
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        # what a web page where the API should be says to check; a native API (Ollama's) sets its own
        self.address_hint = "an OpenAI-compatible server's usually ends in /v1"
        # the read timeout applies between chunks, so a stream that stalls mid-paragraph ends too
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def get_json(self, path: str, *, timeout: float = 5.0, root: bool = False) -> Any:
        """One GET, no retries (a question about the server, not a call that costs): its JSON, or the error it
        means. ``root``: ``path`` is from the server's root, not from ``base_url`` (its /v1)."""
        url = f"{server_root(self.base_url) if root else self.base_url}{path}"
        try:
            response = self._client.get(url, headers=self._headers(), timeout=timeout)
        except httpx.HTTPError as e:
            raise self._failure(e) from None
        if response.status_code not in RETRY_STATUS:
            _refuse_html(response, url, self.address_hint)
        if response.status_code in (401, 403):
            raise ModelAuthError(f"{url} refused the API key (HTTP {response.status_code}): {_error_detail(response)}")
        if response.status_code >= 400:
            raise RejectedRequest(f"{url} answered HTTP {response.status_code}: {_error_detail(response)}",
                                  response.status_code)
        try:
            return response.json()
        except ValueError:
            raise ModelError(f"{url} answered with something that is not JSON") from None

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.stream(path, body) as response:
            raw = response.read()
        try:
            data = json.loads(raw.decode("utf-8", errors="replace"))
        except json.JSONDecodeError:
            raise ModelError(f"{self.base_url}{path} answered with something that is not JSON") from None
        if not isinstance(data, dict):
            raise ModelError(f"{self.base_url}{path} answered with JSON of the wrong shape")
        return data

    @contextmanager
    def stream(self, path: str, body: dict[str, Any]) -> Iterator[httpx.Response]:
        """POST and yield the open response once its status is OK (retrying what is worth retrying).
        Once the response is yielded, a failure is the caller's to see: it is never retried."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._delay,
            retry=tenacity.retry_if_exception_type(_TryAgain),
            sleep=lambda seconds: time.sleep(seconds),
            reraise=True,
        )
        try:
            response = retrying(self._open, f"{self.base_url}{path}", body)
        except _TryAgain as e:
            raise e.final(retrying.statistics.get("attempt_number", 1)) from None
        try:
            yield response
        except httpx.HTTPError as e:  # the answer stalled or broke off while the caller read it
            raise self._failure(e) from None
        finally:
            response.close()

    def _open(self, url: str, body: dict[str, Any]) -> httpx.Response:
        """One try: the response, open, if its status is OK; else the error it means."""
        try:
            request = self._client.build_request("POST", url, json=body, headers=self._headers())
            response = self._client.send(request, stream=True)
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError) as e:
            # a busy server may drop a connection before answering: retry that like a 503
            raise _TryAgain(self._failure(e)) from None
        except httpx.HTTPError as e:
            raise self._failure(e) from None
        if response.status_code not in RETRY_STATUS:  # (a proxy's 502 page while a server restarts is retried)
            try:
                _refuse_html(response, url, self.address_hint)
            except ConfigError:
                response.close()
                raise
        if response.status_code < 400:
            return response
        status = response.status_code
        try:
            detail = _error_detail(response)
        finally:
            response.close()
        if "response_format" in detail:
            # some servers (llama-cpp-python) answer an unsupported response_format with a 500:
            # that is a refusal to fall back from, not an outage to retry
            raise RejectedRequest(f"the model server rejected the response format (HTTP {status}): {detail}", status)
        if status in (401, 403):
            raise ModelAuthError(f"the model server at {self.base_url} refused the API key (HTTP {status}): {detail}")
        if status in RETRY_STATUS:
            raise _TryAgain(status=status, detail=detail, retry_after=response.headers.get("retry-after", ""))
        raise RejectedRequest(f"the model server rejected the request (HTTP {status}): {detail}", status)

    def _failure(self, e: httpx.HTTPError) -> ModelConnectionError:
        if isinstance(e, httpx.ConnectError):
            return ModelConnectionError(f"cannot reach the model server at {self.base_url}: {_reason(e)}")
        if isinstance(e, httpx.TimeoutException):
            return ModelConnectionError(f"the model server at {self.base_url} did not answer within {self.timeout:g} s")
        return ModelConnectionError(f"the connection to {self.base_url} failed: {_reason(e)}")

    def _delay(self, state: tenacity.RetryCallState) -> float:
        """Seconds before the next try: what the server's Retry-After asks (at most 30), else exponential."""
        error = state.outcome.exception() if state.outcome else None
        try:
            return min(float(error.retry_after), 30.0)  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            return self.backoff * (2 ** (state.attempt_number - 1))

    def close(self) -> None:
        self._client.close()


def server_root(base_url: str) -> str:
    """The server's own address without the OpenAI-compatible API's ``/v1``: where its other endpoints are."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _refuse_html(response: httpx.Response, url: str, hint: str) -> None:
    """A web page where the API should be (a proxy's login page, a server's UI, the wrong port) is a mistake in
    the address, not an answer: one line naming it."""
    if "text/html" in response.headers.get("content-type", ""):
        raise ConfigError(f"{url} answered with a web page (HTTP {response.status_code}), not the API: check the "
                          f"address (--base-url; {hint})")


def _error_detail(response: httpx.Response) -> str:
    try:
        raw = response.read()[:2000].decode("utf-8", errors="replace")
    except httpx.HTTPError:
        return "(no body)"
    try:
        data = json.loads(raw)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", raw) if isinstance(error, dict) else error
        if isinstance(error, dict) and error.get("n_ctx"):  # llama-server's exceed_context_size_error says its context
            message = f"{message} (n_ctx {error['n_ctx']})"
    except json.JSONDecodeError:
        message = raw
    return " ".join(str(message).split())[:300] or "(no body)"


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return "connection refused" if "refused" in text.lower() else text
