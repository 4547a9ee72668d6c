"""Raise an Anthropic SDK error the way ``ChatAnthropic``'s own direct call raises it.

A call the engine answered from a batch must fail with the very exception class the
unwrapped model raises, so the host's ``except`` clauses keep working. langchain-anthropic
translates SDK errors in private helpers whose names and behaviour changed across releases
(1.5 re-raises most errors unchanged; later releases classify each one), so this module
keys on the *public* error classes the installed release exports: a class the release
lacks means that release raises the SDK error unchanged, and so does this.
"""

from __future__ import annotations

import warnings
from typing import Any, NoReturn

import anthropic
import langchain_anthropic.chat_models as chat_models

__all__ = ["raise_as_langchain"]

#: SDK error type -> public langchain-anthropic class raised for it, most specific first.
_CLASSIFIED: tuple[tuple[type[anthropic.APIError], str], ...] = (
    (anthropic.AuthenticationError, "AnthropicAuthenticationError"),
    (anthropic.PermissionDeniedError, "AnthropicPermissionDeniedError"),
    (anthropic.NotFoundError, "AnthropicModelNotFoundError"),
    (anthropic.RateLimitError, "AnthropicRateLimitError"),
    (anthropic.OverloadedError, "AnthropicOverloadedError"),
    (anthropic.InternalServerError, "AnthropicAPIError"),
)


def _public(name: str) -> type[BaseException] | None:
    found = getattr(chat_models, name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _bad_request(error: anthropic.BadRequestError) -> BaseException:
    if "prompt is too long" in error.message:
        overflow = _public("AnthropicContextOverflowError")
        if overflow is not None:
            return _status_error(overflow, error)
    if "messages: at least one message is required" in error.message:
        warnings.warn("Received only system message(s). ", stacklevel=4)
    invalid = _public("AnthropicInvalidRequestError")
    return _status_error(invalid, error) if invalid is not None else error


def _status_error(cls: type[BaseException], error: anthropic.APIStatusError) -> BaseException:
    made: BaseException = cls(message=error.message, response=error.response, body=error.body)  # type: ignore[call-arg]
    return made


def _classified(error: BaseException) -> BaseException:
    """The exception the installed langchain-anthropic raises for ``error``."""
    if isinstance(error, anthropic.BadRequestError):
        return _bad_request(error)
    if isinstance(error, anthropic.APIStatusError):
        for sdk_type, name in _CLASSIFIED:
            cls = _public(name)
            if isinstance(error, sdk_type) and cls is not None:
                return _status_error(cls, error)
        return error
    # APITimeoutError subclasses APIConnectionError, so it is tested first.
    if isinstance(error, anthropic.APITimeoutError):
        timeout: Any = _public("AnthropicTimeoutError")
        return timeout(error.request) if timeout is not None else error
    if isinstance(error, anthropic.APIConnectionError):
        connection: Any = _public("AnthropicConnectionError")
        return connection(message=error.message, request=error.request) if connection is not None else error
    return error


def raise_as_langchain(error: BaseException) -> NoReturn:
    """Raise ``error`` as the unwrapped model's direct call would have raised it."""
    translated = _classified(error)
    if translated is error:
        raise error
    raise translated from error
