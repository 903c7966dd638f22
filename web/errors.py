"""Named errors of the web services, each with a message the user can act on."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors services raise; views turn them into a page or a JSON error."""

    status = 400


class NotFound(ServiceError):
    """No such thing (or not one this user may see: the same answer, so ids leak nothing)."""

    status = 404


class Forbidden(ServiceError):
    """The user is known but may not do this."""

    status = 403


class UploadRejected(ServiceError):
    """The upload was refused (bad file, late, or too many); nothing was stored."""

    status = 400


class RateLimited(UploadRejected):
    """Too many submissions to one assignment within the hour."""

    status = 429


class IdempotencyConflict(UploadRejected):
    """An Idempotency-Key sent again with a different upload."""

    status = 422


class BadCredentials(ServiceError):
    """Wrong username or password, or a revoked or unknown token."""

    status = 401
