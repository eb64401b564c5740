"""What clients talk to: the served WSGI app (server.py), moto's SageMaker, Logs and CloudWatch answers patched to
behave as on AWS (patch.py, log_filter.py, metric_data.py), and the engine that holds jobs and tuning jobs. The top
floor of local_sagemaker: it imports runner/, store/, tuning/ and pages/; none of them imports it (store/ only for
types)."""
