"""SageMaker pulls a training image only from the ECR of the job's own region (handlers/ecr.py)."""

from __future__ import annotations

import pytest

from handlers.ecr import EcrImage, cross_region_problem, ecr_image


@pytest.mark.parametrize(("uri", "expected"), [
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1", EcrImage("123456789012", "us-east-1", "amazonaws.com")),
    ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/t@sha256:ab",
     EcrImage("123456789012", "us-gov-west-1", "amazonaws.com")),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b:2", EcrImage("123456789012", "cn-north-1",
                                                                         "amazonaws.com.cn")),
    ("registry.example.com/team/trainer:1", None),
    ("public.ecr.aws/team/trainer:1", None),
    ("trainer:latest", None),
])
def test_ecr_images_are_recognised(uri: str, expected: EcrImage | None) -> None:
    assert ecr_image(uri) == expected


def test_the_same_region_passes_and_another_is_named() -> None:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1"
    assert cross_region_problem(image, "us-east-1") is None
    problem = cross_region_problem(image, "ap-southeast-2")
    assert problem is not None and problem.startswith("is in the ECR of us-east-1, but the job runs in ap-southeast-2")


def test_a_wrong_dns_suffix_for_the_partition_is_named() -> None:
    assert cross_region_problem("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/t:1", "cn-north-1") is None
    problem = cross_region_problem("123456789012.dkr.ecr.cn-north-1.amazonaws.com/t:1", "cn-north-1")
    assert problem is not None and ".amazonaws.com.cn" in problem


def test_images_outside_ecr_are_not_its_concern() -> None:
    assert cross_region_problem("registry.example.com/trainer:1", "eu-west-1") is None
