"""Walking a list operation with botocore's own paginator, each page sent by a call of ours.

botocore's paging model says, per operation, which members carry the token, the page size and the results; its
Paginator walks them (a token that repeats is an error, MaxItems cuts across pages and says where to resume). Here
each page goes through the caller's `call` (SageMakerClient.call: rate limits, retries, error classes), not through
a raw boto3 client.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.paginate import Paginator, PaginatorModel

from handlers.service_model import operation_model

#: the largest page SageMaker's list operations serve (their MaxResults' maximum)
MAX_PAGE = 100


@dataclass(frozen=True)
class Listed:
    """The items of a walk, and whether more were left (the walk stopped at `max_items`)."""

    items: list[dict[str, Any]]
    more: bool


@functools.lru_cache(maxsize=4)
def _paginators(service: str) -> PaginatorModel:
    return botocore.session.get_session().get_paginator_model(service)


def result_key(operation: str, service: str = "sagemaker") -> str:
    """The member holding an operation's items, e.g. `TrainingJobSummaries`."""
    key = _paginators(service).get_paginator(operation)["result_key"]
    return key if isinstance(key, str) else str(key[0])


def list_all(call: Callable[..., dict[str, Any]], operation: str, params: Mapping[str, Any],
             max_items: int | None = None, service: str = "sagemaker") -> Listed:
    """Every item `operation` lists for `params` (at most `max_items`), page after page, each page one `call(**page
    params)` of the operation."""
    config = _paginators(service).get_paginator(operation)
    # botocore calls `method(**page params)`; its stubs type the method as a str
    paginator: Paginator[dict[str, Any]] = Paginator(call, config, operation_model(operation, service))  # type: ignore[arg-type]
    size = min(max_items, MAX_PAGE) if max_items else MAX_PAGE
    result = paginator.paginate(**params, PaginationConfig={"MaxItems": max_items, "PageSize": size})
    full = result.build_full_result()
    return Listed(list(full.get(result_key(operation, service), [])), more=bool(full.get("NextToken")))
