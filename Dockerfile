# The SageMaker connector for a Flyte cluster: flytekit's `pyflyte serve connector` with this plugin installed.
# Build from the repository root:   docker build -t <registry>/sagemaker-connector:<tag> .
# Run it with deploy/ (kubectl apply -f deploy/); its config is /etc/sagemaker-plugin/config.yaml (config.cluster.yaml
# here, replaced in the cluster by deploy/configmap.yaml). It exits with code 2, saying why, if the config is missing,
# broken or incomplete.
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY .ci/constraints.txt ./constraints.txt
COPY plugin ./plugin
COPY handlers ./handlers
COPY image_registry ./image_registry
COPY local_sagemaker ./local_sagemaker
# The versions CI tested (.ci/constraints.txt), so that an image built later runs what the tests ran.
RUN pip install --no-cache-dir -c constraints.txt '.[flyte]' \
    && useradd --create-home --uid 10001 connector

COPY config.cluster.yaml /etc/sagemaker-plugin/config.yaml
ENV SAGEMAKER_PLUGIN_CONFIG=/etc/sagemaker-plugin/config.yaml \
    PYTHONUNBUFFERED=1
USER 10001
# 8000: gRPC (flyteidl's AsyncAgentService, AgentMetadataService and gRPC health); 9090: Prometheus /metrics
EXPOSE 8000 9090
CMD ["pyflyte", "serve", "connector", "--port", "8000", "--prometheus_port", "9090"]
