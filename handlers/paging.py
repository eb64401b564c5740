"""Walking a list operation with botocore's own paginator, each page sent by a call of ours: every list call of the
project pages here (SageMaker's lists, CloudWatch Logs' streams and events, CloudWatch's metric data).

botocore's paging model says, per operation, which members carry the token, the page size and the results; its
Paginator walks them (MaxItems cuts across pages and says where to resume). Here each page goes through the caller's
`call` (SageMakerClient.call: rate limits, retries, error classes), not through a raw boto3 client, and a token handed
out a second time (a server walking in a circle) ends the walk with AwsError instead of looping forever.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.exceptions import PaginationError
from botocore.paginate import Paginator, PaginatorModel

from handlers.errors import AwsError
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


def _paginator(call: Callable[..., dict[str, Any]], operation: str, service: str) -> Paginator[dict[str, Any]]:
    config = _paginators(service).get_paginator(operation)
    # botocore calls `method(**page params)`; its stubs type the method as a str
    return Paginator(call, config, operation_model(operation, service))  # type: ignore[arg-type]


def pages(call: Callable[..., dict[str, Any]], operation: str, params: Mapping[str, Any], *,
          service: str = "sagemaker", max_pages: int | None = None) -> Iterator[dict[str, Any]]:
    """Each page (the whole response) `operation` answers for `params`, at most `max_pages`, each one `call(**page
    params)`; AwsError naming the operation when a token comes back that was handed out before."""
    paginator = _paginator(call, operation, service)
    output = _paginators(service).get_paginator(operation)["output_token"]
    seen: set[str] = set()
    walk = paginator.paginate(**params)
    try:
        for number, page in enumerate(walk, start=1):
            yield page
            token = page.get(output if isinstance(output, str) else output[0])
            if max_pages is not None and number >= max_pages:
                return
            if token and str(token) in seen:
                raise PaginationError(message=f"the same token was handed out twice ({str(token)[:40]})")
            if token:
                seen.add(str(token))
    except PaginationError as error:
        raise AwsError(f"{operation}: {error}", operation=operation) from None


def list_all(call: Callable[..., dict[str, Any]], operation: str, params: Mapping[str, Any],
             max_items: int | None = None, service: str = "sagemaker") -> Listed:
    """Every item `operation` lists for `params` (at most `max_items`), page after page, each page one `call(**page
    params)` of the operation."""
    paginator = _paginator(call, operation, service)
    size = min(max_items, MAX_PAGE) if max_items else MAX_PAGE
    result = paginator.paginate(**params, PaginationConfig={"MaxItems": max_items, "PageSize": size})
    full = result.build_full_result()
    return Listed(list(full.get(result_key(operation, service), [])), more=bool(full.get("NextToken")))
