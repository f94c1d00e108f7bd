"""Who may use the app when `--auth user:password` is on: the same accounts for the UI and the JSON API.

The API accepts HTTP Basic with those accounts, or the session cookie the UI's login sets (so the
API docs and scripts run in a signed-in browser work too). Without `--auth` everyone may.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from fastapi import Request

from .errors import Unauthorized  # raised here, defined with the others


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """`user:password` -> [(user, password)]; None when unset. Raises ValueError for a malformed value."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth 的格式应为 user:password（--auth must be user:password）")
    return [(user, password)]


class Accounts:
    def __init__(self, accounts: list[tuple[str, str]] | None):
        self.accounts = dict(accounts or [])
        self.gradio_app: Any = None  # set once the UI is mounted: its login sessions count too

    @property
    def enabled(self) -> bool:
        return bool(self.accounts)

    def check(self, user: str, password: str) -> bool:
        wanted = self.accounts.get(user)
        # compare_digest on bytes: constant time for any (also non-ASCII) password
        return wanted is not None and secrets.compare_digest(wanted.encode(), password.encode())

    def user(self, request: Request) -> str | None:
        """The signed-in user of this request, or None."""
        if not self.enabled:
            return ""
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return user if self.check(user, password) else None
        app = self.gradio_app
        if app is not None:
            token = request.cookies.get(f"access-token-{app.cookie_id}") or request.cookies.get(
                f"access-token-unsecure-{app.cookie_id}")
            if token and token in app.tokens:
                return app.tokens[token]
        return None

    def require(self, request: Request) -> str:
        """FastAPI dependency: the user, or Unauthorized."""
        user = self.user(request)
        if user is None:
            raise Unauthorized()
        return user
