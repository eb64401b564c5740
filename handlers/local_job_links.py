"""Where a person watches a local training job: the local SageMaker's page `/~jobs/<name>?token=...`.

A browser cannot sign requests, so the pages have their own key: a token derived from the local SageMaker's secret
key (HMAC-SHA256), which the server and every client holding its key pair compute alike; no other channel carries
it. The token opens only the pages (read-only views of a job), never the API.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

#: The pages share their endpoint with the local S3, where a path-style `/<first segment>/...` names a bucket: `~` is
#: in no bucket name S3 ever allowed (today's rules, nor the legacy ones that also took capitals and `_`), so no
#: bucket's objects are ever shadowed by a page.
PAGE_PREFIX = "/~jobs/"
_PURPOSE = b"sagemaker-plugin local job pages v1"


def page_token(secret_access_key: str) -> str:
    return hmac.new(secret_access_key.encode(), _PURPOSE, hashlib.sha256).hexdigest()[:32]


def page_url(endpoint_url: str, job_name: str, secret_access_key: str) -> str:
    """The job's page on the local SageMaker at `endpoint_url`."""
    return f"{endpoint_url.rstrip('/')}{PAGE_PREFIX}{quote(job_name, safe='')}?token={page_token(secret_access_key)}"


def data_url(job_name: str, token: str) -> str:
    """The page's own JSON, on the same origin (a relative address)."""
    return f"{PAGE_PREFIX}{quote(job_name, safe='')}/data?token={token}"
