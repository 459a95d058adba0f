"""The exchange's error tree; the HTTP layer maps each class to one status and RFC 9457 body.

ExchangeError               400
 ├── InvalidInput           422  malformed or contradictory input
 ├── Unauthenticated        401  no token, or an unknown or revoked one
 ├── Forbidden              403  wrong role, someone else's resource, a bad signature
 ├── NotFound               404
 ├── Conflict               409  a replayed nonce, a name already taken
 └── Unavailable            503  retryable overload (the HTTP layer adds Retry-After)

Not HTTP errors (they stop a command or the server's start): NotMigratedError, the database
schema is not at the code's revision; WitnessConfigError, the witness settings are wrong.
"""

from __future__ import annotations


class ExchangeError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(ExchangeError):
    status = 422
    title = "Invalid input"


class Unauthenticated(ExchangeError):
    status = 401
    title = "Not authenticated"


class Forbidden(ExchangeError):
    status = 403
    title = "Forbidden"


class NotFound(ExchangeError):
    status = 404
    title = "Not found"


class Conflict(ExchangeError):
    status = 409
    title = "Conflict"


class Unavailable(ExchangeError):
    status = 503
    title = "Temporarily unavailable"


class NotMigratedError(RuntimeError):
    """The database schema is not at the code's revision."""


class WitnessConfigError(Exception):
    """The witness settings (CORPUSX_WITNESSES, CORPUSX_WITNESS_POLICY, ...) are wrong."""
