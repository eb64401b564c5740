"""The job plugins (training, tuning) and what they are made of: the request mapping, the render pipeline, the
create queue, attempts and the resources `get` reports. Which kind is which is data (handlers/job_kinds.py)."""
