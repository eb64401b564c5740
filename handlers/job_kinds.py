"""The kinds of SageMaker job the plugin makes (training jobs, hyperparameter tuning jobs), as data: the members and
operations by which each is named, described and stopped, so that the create queue and its abort marks serve both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.client import SageMakerClient
from handlers.status import Status, phase_of, tuning_phase_of


@dataclass(frozen=True)
class JobKind:
    noun: str  # as messages name it
    name_member: str
    arn_member: str
    status_member: str
    describe_operation: str
    stop_operation: str
    create_operation: str
    phase_function: Callable[[Mapping[str, Any], bool], Status]  # (description, stopped by the plugin)
    stopped_when: tuple[tuple[str, str], ...]  # the described members of a stopped job, whoever stopped it
    definition_member: str | None = None  # the request member that holds OutputDataConfig (None: the request)

    def create(self, client: SageMakerClient, request: Mapping[str, Any]) -> str:
        """Create the job; its ARN. A name already taken raises NameInUse (perhaps our own lost create's job)."""
        return str(client.call("sagemaker", self.create_operation, **request)[self.arn_member])

    def stopped(self, description: Mapping[str, Any]) -> bool:
        return all(description.get(member) == value for member, value in self.stopped_when)

    def phase(self, description: Mapping[str, Any], stopped_by_plugin: bool) -> Status:
        return self.phase_function(description, stopped_by_plugin)

    def describe(self, client: SageMakerClient, name: str) -> dict[str, Any]:
        """Describe the job; a missing one raises NotFound."""
        return client.call("sagemaker", self.describe_operation, **{self.name_member: name})

    def stop(self, client: SageMakerClient, name: str) -> None:
        client.call("sagemaker", self.stop_operation, **{self.name_member: name})

    def output_config(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """The create request's OutputDataConfig (a tuning job's is its trials')."""
        holder = request if self.definition_member is None else request[self.definition_member]
        output: Mapping[str, Any] = holder["OutputDataConfig"]
        return output


TRAINING = JobKind("training job", "TrainingJobName", "TrainingJobArn", "TrainingJobStatus", "DescribeTrainingJob",
                   "StopTrainingJob", "CreateTrainingJob", phase_of,
                   (("TrainingJobStatus", "Stopped"), ("SecondaryStatus", "Stopped")))
TUNING = JobKind("tuning job", "HyperParameterTuningJobName", "HyperParameterTuningJobArn",
                 "HyperParameterTuningJobStatus", "DescribeHyperParameterTuningJob", "StopHyperParameterTuningJob",
                 "CreateHyperParameterTuningJob", tuning_phase_of, (("HyperParameterTuningJobStatus", "Stopped"),),
                 definition_member="TrainingJobDefinition")
#: every kind, for what must know them all (the IAM policy's checks)
KINDS = (TRAINING, TUNING)
