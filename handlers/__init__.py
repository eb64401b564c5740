"""What SageMaker sees: request building, validation, the client, status mapping, tracking and logs."""
