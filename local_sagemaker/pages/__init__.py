"""The HTML pages the local SageMaker serves beside its API (a job's page with its curves and logs)."""
