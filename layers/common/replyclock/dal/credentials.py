"""Source credentials from Secrets Manager or SSM Parameter Store, through Powertools Parameters.

A name starting with "/" is an SSM parameter path (a SecureString, decrypted); any other
name is a Secrets Manager secret. Either holds a JSON object of strings, for example
{"bearer_token": "..."}. Values are cached for CACHE_SECONDS per warm container and are
registered with replyclock.redaction as soon as they are read, so they are masked in every
log line and error message afterwards. Errors name the credentials, never their content.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from replyclock.models.sources import Credentials
from replyclock.redaction import register_secrets

CACHE_SECONDS = 300
# Values under these keys identify an account and are not masked (they appear in URLs and logs as handles).
PUBLIC_KEYS = frozenset({"username", "identifier", "client_id"})


class CredentialsError(Exception):
    """The credentials are missing, unreadable, or not a JSON object of strings."""


def get_credentials(name: str, *, fresh: bool = False) -> Credentials:
    """The credentials named; `fresh` reads them from the store even when a cached value is young."""
    try:
        if name.startswith("/"):
            raw = parameters.get_parameter(name, decrypt=True, max_age=CACHE_SECONDS, force_fetch=fresh)
        else:
            raw = parameters.get_secret(name, max_age=CACHE_SECONDS, force_fetch=fresh)
    except GetParameterError:
        # The provider's message can quote the SDK's; ours names only what we asked for.
        raise CredentialsError(f"cannot read credentials {name!r}") from None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict) or not all(isinstance(value, str) for value in values.values()):
        raise CredentialsError(f"credentials {name!r} are not a JSON object of strings")
    register_secrets(value for key, value in values.items() if key not in PUBLIC_KEYS)
    return Credentials.model_validate({"values": values})


def clear_cache() -> None:
    """Forget cached values and the Powertools providers (and their SDK clients); tests start clean."""
    DEFAULT_PROVIDERS.clear()
