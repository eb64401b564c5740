"""Where an ECR image lives, and SageMaker's rule that a training job pulls its image from its own region's ECR.

CreateTrainingJob refuses an image in another region's ECR: AWS answers ValidationException ("Invalid DNS suffix
'amazonaws.com' for region 'us-east-1' in training image. Please provide the valid <region>.<dns-suffix>: ...", and
for models "Cross region ECR image pulls are not allowed"). The local SageMaker does not pull images, so without this
check such a task passes locally and fails on AWS. Images outside ECR (a private registry the job reaches through its
VPC) are not ECR's concern and pass.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_ECR_HOST = re.compile(r"(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.(?P<suffix>[a-z0-9.-]+?)"
                       r"(?::\d+)?/")


@dataclass(frozen=True)
class EcrImage:
    account: str
    region: str
    dns_suffix: str


def ecr_image(uri: str) -> EcrImage | None:
    """The account, region and DNS suffix of an ECR image URI; None for any other registry."""
    match = _ECR_HOST.match(uri)
    if match is None:
        return None
    return EcrImage(match["account"], match["region"], match["suffix"])


@functools.lru_cache(maxsize=64)
def dns_suffix(region: str) -> str | None:
    """The DNS suffix of the region's partition (amazonaws.com, amazonaws.com.cn, ...), from botocore's data."""
    import botocore.session
    from botocore.regions import EndpointResolver

    session = botocore.session.get_session()
    try:
        partition = session.get_partition_for_region(region)
        return str(EndpointResolver(session.get_data("endpoints")).get_partition_dns_suffix(partition))
    except Exception:  # an unknown region: nothing to compare with
        return None


def cross_region_problem(image: str, region: str) -> str | None:
    """What is wrong with pulling `image` for a training job in `region`, or None when SageMaker can pull it."""
    found = ecr_image(image)
    if found is None:
        return None
    if found.region != region:
        return (f"is in the ECR of {found.region}, but the job runs in {region}: SageMaker pulls a training image "
                f"only from the ECR of the job's own region (AWS refuses the job: cross-region ECR image pulls are "
                f"not allowed); push the image to a repository in {region} (ECR replication can copy it), or run the "
                f"job in {found.region}")
    expected = dns_suffix(region)
    if expected is not None and found.dns_suffix != expected:
        return (f"ends in .{found.dns_suffix}, but ECR in {region} is at .{expected} "
                f"({found.account}.dkr.ecr.{region}.{expected}/...)")
    return None
