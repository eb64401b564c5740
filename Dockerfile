# The SageMaker connector's images, one per Flyte generation, both built from the repository root:
#   flytekit's `pyflyte serve connector` (the default target):
#       docker build -t <registry>/sagemaker-connector:<tag> .
#   Flyte 2's connector server, `c0` (target flyte2):
#       docker build --target flyte2 -t <registry>/sagemaker-connector-flyte2:<tag> .
# Run them with deploy/ (kubectl apply -f deploy/), Flyte 2's with deploy/flyte2/ beside it (the same ConfigMap and
# ServiceAccount). Their config is /etc/sagemaker-plugin/config.yaml (config.cluster.yaml here, replaced in the cluster
# by deploy/configmap.yaml). Each exits with code 2, saying why, if the config is missing, broken or incomplete.
FROM python:3.11-slim AS base

WORKDIR /src
COPY pyproject.toml README.md ./
COPY .ci/constraints.txt ./constraints.txt
COPY plugin ./plugin
COPY handlers ./handlers
COPY image_registry ./image_registry
COPY local_sagemaker ./local_sagemaker
RUN useradd --create-home --uid 10001 connector
COPY config.cluster.yaml /etc/sagemaker-plugin/config.yaml
ENV SAGEMAKER_PLUGIN_CONFIG=/etc/sagemaker-plugin/config.yaml \
    PYTHONUNBUFFERED=1
# 8000: gRPC (the connector service, its metadata service and gRPC health); 9090: Prometheus /metrics
EXPOSE 8000 9090

# Flyte 2: its server finds the connector through the `flyte.connectors` entry point (`--modules` names it too, so an
# image never serves without it). The versions CI tested (.ci/constraints.txt: both generations in one environment).
FROM base AS flyte2
RUN pip install --no-cache-dir -c constraints.txt '.[flyte2]'
USER 10001
CMD ["c0", "--port", "8000", "--prometheus_port", "9090", "--modules", "plugin.flyte2.connector"]

# flytekit (the last stage: what a build without --target makes), at the versions CI tested.
FROM base AS flytekit
RUN pip install --no-cache-dir -c constraints.txt '.[flyte]'
USER 10001
CMD ["pyflyte", "serve", "connector", "--port", "8000", "--prometheus_port", "9090"]
