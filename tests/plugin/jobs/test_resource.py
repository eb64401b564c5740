"""Log links (plugin/jobs/resource.py) and which local SageMaker they must outlast (plugin/embedded.py's own_server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.config import load_config, parse_config
from plugin.embedded import own_server, with_endpoint
from plugin.jobs.resource import Embedded, log_links
from plugin.jobs.tuning_job import tuning_links

URL = "http://127.0.0.1:40321"
JOB = "examples-development-xgboost-regression-n0-0"


def test_a_served_local_sagemakers_links_name_its_endpoint() -> None:
    links = {link.name: link.uri for link in log_links(JOB, "us-east-1", endpoint_url=URL)}
    assert links["Job page (local SageMaker)"].startswith(f"{URL}/")
    assert links["Logs (local SageMaker)"] == \
        f"SAGEMAKER_PLUGIN_ENDPOINT_URL={URL} sagemaker-plugin logs {JOB} --follow --region us-east-1"


@pytest.mark.parametrize("running", [True, False])
def test_an_embedded_local_sagemakers_links_need_no_endpoint_but_the_page_while_running(running: bool) -> None:
    embedded = Embedded("/home/me/my config.yaml")
    links = {link.name: link.uri for link in log_links(JOB, "eu-west-1", endpoint_url=URL, embedded=embedded,
                                                       running=running)}
    tail = "--region eu-west-1 --config '/home/me/my config.yaml'"
    assert {name: uri for name, uri in links.items() if not name.startswith("Job page")} == {
        "Logs (local SageMaker)": f"sagemaker-plugin logs {JOB} {tail}",
        "Status (local SageMaker)": f"sagemaker-plugin status {JOB} {tail}",
        "Metrics (local SageMaker)": f"sagemaker-plugin metrics {JOB} {tail}"}
    page = links.get("Job page (while this run lasts)")
    assert (page is not None and page.startswith(f"{URL}/")) == running
    assert len(links) == 3 + running


def test_a_tuning_jobs_link_on_an_embedded_local_sagemaker_needs_no_endpoint() -> None:
    [link] = tuning_links("tune-1", "us-east-1", endpoint_url=URL, embedded=Embedded())
    assert link.uri == "sagemaker-plugin status tune-1 --region us-east-1"
    [served] = tuning_links("tune-1", "us-east-1", endpoint_url=URL)
    assert served.uri.startswith(f"SAGEMAKER_PLUGIN_ENDPOINT_URL={URL} ")


def test_own_server_is_a_local_sagemaker_this_process_starts_for_itself(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", raising=False)
    (tmp_path / "config.yaml").write_text("backend: local\n")
    monkeypatch.chdir(tmp_path)
    from_file = load_config("config.yaml")  # a relative path: the links name it absolutely
    assert own_server(from_file) == Embedded(str(tmp_path / "config.yaml"))  # the process's own, started on use
    assert own_server(with_endpoint(from_file, URL, embedded=True)) == Embedded(str(tmp_path / "config.yaml"))
    assert own_server(with_endpoint(from_file, URL)) is None  # served
    assert own_server(parse_config({"backend": "local"})) == Embedded(None)  # no file: the defaults
    assert own_server(parse_config({"backend": "aws"})) is None
    monkeypatch.setenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", URL)
    assert own_server(from_file) is None
