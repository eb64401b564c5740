"""What a connector believes of a resource meta it is handed back: nothing that chooses where its requests go.

A served connector gets its metas from whoever calls it. A meta carries the job's region and
endpoint and, while the create waits for quota, the whole CreateTrainingJob request; taken as they come, they would
choose the host that receives the pod's signed requests, the S3 object an abort writes, the role and the security
settings of the job a later GetTask creates. So a meta is followed only when its endpoint (as a URL: scheme, host,
port) and region are the connector's own config's, its job name is one SageMaker could have, and a queued request is
one this config would have rendered: SageMaker's model accepts it, it names the meta's job and fingerprint, and its
role, security settings, tags and output prefix are the config's. The requests then go to the config's endpoint,
never to the meta's spelling of it.
"""

from __future__ import annotations

import math
import time
import urllib.parse
from dataclasses import replace

from handlers.errors import InputError, Problem, join_path, short_repr
from handlers.job_kinds import JobKind
from handlers.request import FINGERPRINT_TAG, fingerprint, tags_of
from handlers.service_model import validate_request, value_at
from plugin.config import Config
from plugin.jobs import mapping
from plugin.meta import ResourceMeta

DEFAULT_PORTS = {"http": 80, "https": 443}
#: service-model problems of a queued request shown at most (a hostile one may have thousands)
MAX_SHOWN = 5
#: how far in the future a meta's creation may lie (another replica's clock)
MAX_CLOCK_SKEW_SECONDS = 300.0


def endpoint_key(url: str | None) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an endpoint URL, lower case, the scheme's default port filled in; None for AWS's own
    endpoint. ValueError when `url` is no URL (a port out of range, a bad IPv6 literal)."""
    if not url:
        return None
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        raise ValueError(f"{short_repr(url)} is not a URL with a scheme and a host")
    return scheme, parts.hostname.lower(), parts.port if parts.port is not None else DEFAULT_PORTS.get(scheme)


def same_endpoint(first: str | None, second: str | None) -> bool:
    """Whether two endpoint URLs name the same endpoint (scheme, host and port; case and default ports aside)."""
    try:
        return endpoint_key(first) == endpoint_key(second)
    except ValueError:
        return False


def trusted_meta(meta: ResourceMeta, config: Config, endpoint_url: str | None, kind: JobKind,
                 now: float | None = None) -> ResourceMeta:
    """`meta` with the config's endpoint, when nothing in it chooses where requests go; else InputError saying what.

    `endpoint_url` is where the connector's own config sends requests (None: AWS's own endpoint of config.region);
    `now` the time (epoch seconds) that the meta's creation must not be later than, give or take clock skew.
    """
    now = time.time() if now is None else now
    problems: list[Problem] = []
    if not same_endpoint(meta.endpoint_url, endpoint_url):
        named = f"endpoint {short_repr(meta.endpoint_url)}" if meta.endpoint_url else "AWS's own endpoint"
        mine = f"{endpoint_url}" if endpoint_url else "AWS's own endpoint"
        problems.append(Problem("endpoint_url", f"names {named}, not this connector's ({mine}): requests go only "
                                "where the connector's config says"))
    if meta.region != config.region:
        problems.append(Problem("region", f"{short_repr(meta.region)} is not this connector's region "
                                f"({config.region}): requests go only where the connector's config says"))
    problems += [Problem("job_name", p.message) for p in validate_request(kind.describe_operation,
                                                                          {kind.name_member: meta.job_name})]
    if not math.isfinite(meta.created_at):
        problems.append(Problem("created_at", f"must be a finite number of seconds, not {meta.created_at!r}"))
    elif meta.created_at > now + MAX_CLOCK_SKEW_SECONDS:
        problems.append(Problem("created_at", f"{meta.created_at!r} is {meta.created_at - now:.0f} s in the future"))
    if meta.queued_request is not None:
        problems += [Problem(join_path("queued_request", p.path), p.message)
                     for p in queued_request_problems(meta, config, kind)]
    if problems:
        raise InputError(problems)
    return replace(meta, endpoint_url=endpoint_url)


def queued_request_problems(meta: ResourceMeta, config: Config, kind: JobKind) -> list[Problem]:
    """Why a queued create request is not one this config renders for the meta's job (empty when it is)."""
    request = meta.queued_request
    assert request is not None
    operation = "Create" + kind.describe_operation.removeprefix("Describe")
    problems = validate_request(operation, request)
    if problems:
        shown = [Problem(p.path, p.message) for p in problems[:MAX_SHOWN]]
        more = len(problems) - len(shown)
        return shown + ([Problem("", f"and {more} more problems")] if more else [])
    if request.get(kind.name_member) != meta.job_name:
        problems.append(Problem(kind.name_member, f"is not the meta's job_name ({meta.job_name})"))
    if not (meta.fingerprint == tags_of(request).get(FINGERPRINT_TAG) == fingerprint(request)):
        problems.append(Problem("Tags", f"the {FINGERPRINT_TAG} tag must be the fingerprint of the request and the "
                                "meta's"))
    missing = sorted(k for k, v in config.tags.items() if tags_of(request).get(k) != v)
    if missing:
        problems.append(Problem("Tags", f"lacks the config's tags {', '.join(missing)}"))
    holder = request if kind.definition_member is None else request[kind.definition_member]
    for path, expected in mapping.config_members(config).items():
        found, value = value_at(holder, path)
        if (value if found else None) != expected:
            where = join_path(kind.definition_member or "", path)
            problems.append(Problem(where, f"is {short_repr(value) if found else 'not set'}, not the config's "
                                    f"{short_repr(expected) if expected is not None else 'unset value'}"))
    prefix = mapping.default_output_prefix(config)
    output = str(kind.output_config(request).get("S3OutputPath", ""))
    if prefix and not _under(output, prefix):
        problems.append(Problem(join_path(kind.definition_member or "", "OutputDataConfig.S3OutputPath"),
                                f"{short_repr(output)} is not under the config's output_prefix {prefix}"))
    return problems


def _under(uri: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return uri == prefix or uri.startswith(prefix + "/")
