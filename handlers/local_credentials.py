"""The key pair a local SageMaker accepts, and where its clients find it.

A local SageMaker runs code that arrives in requests, so it accepts only requests signed with its own key pair, made
at random when it starts. Its clients find that pair here: a server started in this process registers it under its
URL (the plugin's embedded server, tests' servers); a server started elsewhere (`sagemaker-plugin local serve`) printed
it as `export AWS_ACCESS_KEY_ID=...` lines, so it comes from the environment. Anything else gets moto's customary
dummies, which a plain moto server accepts and a local SageMaker refuses with AWS's own answer.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"
#: what a plain moto server accepts (any pair would do); a local SageMaker refuses it
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"


@dataclass(frozen=True)
class LocalCredentials:
    """An access key id and its secret; the secret stays out of repr()."""

    access_key_id: str
    secret_access_key: str = field(repr=False)

    def env(self) -> dict[str, str]:
        """The environment variables boto3 reads them from (what `local serve` prints for other shells)."""
        return {ACCESS_KEY_ENV: self.access_key_id, SECRET_KEY_ENV: self.secret_access_key}


DUMMY = LocalCredentials(DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY)

_lock = threading.Lock()
_served: dict[str, LocalCredentials] = {}  # a registry: endpoint URL -> the pair of the server running there


def _key(url: str) -> str:
    return url.rstrip("/")


def register(url: str, credentials: LocalCredentials) -> None:
    """A local SageMaker of this process serves `url` with `credentials`."""
    with _lock:
        _served[_key(url)] = credentials


def unregister(url: str, credentials: LocalCredentials | None = None) -> None:
    """It stopped (only if it is still the one registered, when `credentials` are given)."""
    with _lock:
        if credentials is None or _served.get(_key(url)) == credentials:
            _served.pop(_key(url), None)


def served(url: str) -> LocalCredentials | None:
    """The pair of the local SageMaker this process serves at `url`, if any."""
    with _lock:
        return _served.get(_key(url))


def for_endpoint(url: str | None) -> LocalCredentials:
    """What a client of the local SageMaker at `url` signs with: the pair of this process's server there, else
    $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, else the dummies."""
    if url:
        own = served(url)
        if own is not None:
            return own
    key, secret = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
    if key and secret:
        return LocalCredentials(key, secret)
    return DUMMY
