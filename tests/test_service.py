"""The scoring service as a real uvicorn process on 127.0.0.1, over real HTTP (httpx)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import awkward as ak
import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import uproot
import uvicorn

from hepclf.ingest.events.features import compute_features
from hepclf.scoring.scorers import ScoringModel
from hepclf.scoring.service.app import create_app
from hepclf.scoring.service.settings import ServiceSettings
from hepclf.tracking.registry import load_bundle
from tests.conftest import RegisteredModels, Server, free_port, serve, tracking_uri

BRANCHES = ["lep_pt", "lep_eta", "met", "nJet", "Jet_pt", "Jet_eta", "Jet_btag"]


@pytest.fixture(scope="module")
def service(
    registered_models: RegisteredModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """``hepclf serve`` on a free port: one data root, a folder ``outside`` beside it, symlinks
    out."""
    base = tmp_path_factory.mktemp("service")
    root, outside = base / "root", base / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    for name in ("signal.root", "background.root"):
        shutil.copy(registered_models.data / name, root / "data" / name)
    shutil.copy(registered_models.data / "signal.root", outside / "secret.root")
    (root / "link.root").symlink_to(outside / "secret.root")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    with serve(
        base, root, registered_models.tracking_uri, "--max-events", "1000", "--max-body-mb", "1"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def events(registered_models: RegisteredModels) -> list[dict[str, Any]]:
    """300 signal events as JSON-ready dicts (jagged branches as lists)."""
    tree = uproot.open(registered_models.data / "signal.root")["Events"]
    return ak.to_list(tree.arrays(BRANCHES, entry_stop=300))


def pyfunc_scores(registered: RegisteredModels, events: list[dict[str, Any]]) -> np.ndarray:
    """The reference: MLflow's pyfunc on feature columns computed from the same values."""
    uri = f"models:/{registered.xgb}/1"
    with tracking_uri(registered.tracking_uri):
        bundle = load_bundle(uri)
        features = compute_features(bundle.features, ak.Array(events), len(events))
        frame = pd.DataFrame(features, columns=bundle.columns)
        return np.asarray(mlflow.pyfunc.load_model(uri).predict(frame))


def test_health_needs_no_token(service: Server) -> None:
    answer = httpx.get(f"{service.url}/health", timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_every_other_endpoint_needs_the_token(service: Server) -> None:
    wrong = [
        {},
        {"Authorization": "Bearer " + "x" * 43},
        {"Authorization": f"Basic {service.token}"},
    ]
    for headers in wrong:
        for method, path in [
            ("GET", "/models"),
            ("POST", "/models/anything/score"),
            ("POST", "/jobs"),
            ("GET", "/jobs/abc"),
        ]:
            answer = httpx.request(method, service.url + path, headers=headers, json={}, timeout=10)
            assert answer.status_code == 401, (method, path, headers)
            assert answer.headers["www-authenticate"] == "Bearer"


def test_models_lists_aliases_versions_and_metrics(
    service: Server, registered_models: RegisteredModels
) -> None:
    with service.client() as client:
        listing = {m["name"]: m for m in client.get("/models").json()["models"]}
    xgb = listing[registered_models.xgb]
    assert xgb["aliases"] == {"champion": 1} and xgb["latest_version"] == 1
    assert xgb["versions"][0]["metrics"]["auc_test"] == pytest.approx(0.75)
    assert registered_models.linear in listing


def test_scores_equal_pyfunc_for_events_and_columns(
    service: Server, registered_models: RegisteredModels, events: list[dict[str, Any]]
) -> None:
    expected = pyfunc_scores(registered_models, events)
    with service.client() as client:
        by_events = client.post(f"/models/{registered_models.xgb}/score", json={"events": events})
        assert by_events.status_code == 200, by_events.text
        body = by_events.json()
        assert body["model"] == registered_models.xgb and body["version"] == 1
        np.testing.assert_allclose(body["scores"], expected, rtol=1e-6, atol=1e-9)
        with tracking_uri(registered_models.tracking_uri):
            bundle = load_bundle(f"models:/{registered_models.xgb}/1")
        features = compute_features(bundle.features, ak.Array(events), len(events))
        columns = {c: features[:, i].tolist() for i, c in enumerate(bundle.columns)}
        by_columns = client.post(
            f"/models/{registered_models.xgb}/score", json={"columns": columns, "version": 1}
        )
        assert by_columns.status_code == 200, by_columns.text
        np.testing.assert_allclose(by_columns.json()["scores"], expected, rtol=1e-6, atol=1e-9)


def test_bad_payloads_are_422_naming_the_field(
    service: Server, registered_models: RegisteredModels, events: list[dict[str, Any]]
) -> None:
    path = f"/models/{registered_models.xgb}/score"
    no_met = [{k: v for k, v in e.items() if k != "met"} for e in events[:3]]
    cases = [
        ({"events": no_met}, "events[0] has no branch 'met'"),
        ({"events": [{**events[0], "lep_pt": "fast"}]}, "events[0].lep_pt: expected a number"),
        (
            {"events": [events[0], {**events[1], "Jet_pt": 3.0}]},
            "events[1].Jet_pt: expected a list",
        ),
        ({"columns": {"lep_pt": [1.0]}}, "missing feature column(s) ['lep_eta', 'met'"),
    ]
    with service.client() as client:
        for payload, message in cases:
            answer = client.post(path, json=payload)
            assert answer.status_code == 422, payload
            assert message in answer.json()["detail"]
        with tracking_uri(registered_models.tracking_uri):
            names = load_bundle(f"models:/{registered_models.xgb}/1").columns
        columns = {c: [1.0, 1.0] for c in names} | {"met": [1.0, float("inf")]}
        for payload, message in [
            ({"events": [{**events[0], "lep_pt": float("nan")}]}, "events[0].lep_pt: NaN is not"),
            ({"events": [{**events[0], "Jet_pt": [1.0, float("-inf")]}]}, "events[0].Jet_pt[1]"),
            ({"columns": columns}, "columns.met[1]: Infinity is not a finite number"),
        ]:
            body = json.dumps(payload)  # NaN and Infinity as Python's json writes them
            answer = client.post(path, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 422, body
            assert message in answer.json()["detail"]
        neither = client.post(path, json={"alias": "champion"})
        assert neither.status_code == 422
        assert "exactly one of 'events'" in neither.text
        unknown = client.post("/models/no-such-model/score", json={"events": events[:1]})
        assert unknown.status_code == 404 and "no-such-model" in unknown.json()["detail"]


def test_too_many_events_or_bytes_are_413(
    service: Server, registered_models: RegisteredModels, events: list[dict[str, Any]]
) -> None:
    path = f"/models/{registered_models.xgb}/score"
    with service.client() as client:
        many = client.post(path, json={"events": [events[0]] * 1001})
        assert many.status_code == 413 and "at most 1,000" in many.json()["detail"]
        big = b'{"events": [' + b" " * (1 << 20) + b"]}"
        large = client.post(path, content=big, headers={"content-type": "application/json"})
        assert large.status_code == 413 and "1,048,576 bytes" in large.json()["detail"]

        def chunked() -> Iterator[bytes]:
            yield b'{"events": ['
            for _ in range(20):
                yield b" " * 65536
            yield b"]}"

        streamed = client.post(
            path, content=chunked(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413


def test_job_paths_outside_the_roots_are_403(
    service: Server, registered_models: RegisteredModels
) -> None:
    root, outside = service.root, service.root.parent / "outside"
    escapes = [
        str(outside / "secret.root"),
        f"{root}/../outside/secret.root",
        str(root / "link.root"),
        str(root / "linkdir" / "secret.root"),
        str(root / "linkdir" / "*.root"),
        "data/signal.root",
    ]
    with service.client() as client:
        for path in escapes:
            answer = client.post("/jobs", json={"model": registered_models.xgb, "inputs": [path]})
            assert answer.status_code == 403, path
            assert "data root" in answer.json()["detail"]
        inputs = [str(root / "data" / "signal.root")]
        for out in (str(outside), str(root / "linkdir" / "x"), f"{root}/../outside"):
            answer = client.post(
                "/jobs", json={"model": registered_models.xgb, "inputs": inputs, "out": out}
            )
            assert answer.status_code == 403, out
    assert sorted(p.name for p in outside.iterdir()) == ["secret.root"]


def test_job_scores_files_in_the_background(
    service: Server, registered_models: RegisteredModels
) -> None:
    root = service.root
    request = {
        "model": registered_models.xgb,
        "inputs": [f"{root}/data/*.root"],
        "out": str(root / "scores"),
        "keep_branches": ["event"],
    }
    with service.client() as client:
        submitted = client.post("/jobs", json=request)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        deadline = time.monotonic() + 120
        while (job := client.get(f"/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert client.get("/jobs/no-such-job").status_code == 404
    assert job["status"] == "done", job
    assert job["version"] == 1 and job["events"] == 10_000
    for result in job["files"]:
        assert result["status"] == "scored" and result["written"] == 5000
        scored = uproot.open(result["output"])["Events"].arrays()
        source = uproot.open(result["input"])["Events"].arrays(["event"])
        np.testing.assert_array_equal(scored.event, source.event)
        assert Path(result["output"]).parent == root / "scores"


def test_concurrent_clients_get_consistent_answers(
    service: Server, registered_models: RegisteredModels, events: list[dict[str, Any]]
) -> None:
    """8 clients x 50 requests, each bounded by a timeout; every answer is right."""
    path = f"/models/{registered_models.xgb}/score"
    payloads = [{"events": events[i * 20 : (i + 1) * 20]} for i in range(8)]
    expected = pyfunc_scores(registered_models, events[:160]).reshape(8, 20)

    def client_run(i: int) -> list[tuple[int, list[float]]]:
        with httpx.Client(
            base_url=service.url,
            headers={"Authorization": f"Bearer {service.token}"},
            timeout=30.0,
        ) as client:
            answers = [client.post(path, json=payloads[i]) for _ in range(50)]
        return [(a.status_code, a.json().get("scores", [])) for a in answers]

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(client_run, i) for i in range(8)]
        results = [f.result(timeout=180) for f in futures]
    for i, answers in enumerate(results):
        assert [status for status, _ in answers] == [200] * 50
        for _, scores in answers:
            np.testing.assert_allclose(scores, expected[i], rtol=1e-6, atol=1e-9)
    assert time.monotonic() - start < 180


@contextmanager
def in_process_server(token: str) -> Iterator[str]:
    """The app under uvicorn in a thread of this process (so a test can make the model
    fail), over real HTTP; its URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(ServiceSettings(token=token)), host="127.0.0.1", port=port, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.mark.parametrize(
    "error", [RecursionError("maximum recursion depth exceeded"), OverflowError("math range")]
)
def test_a_failure_while_scoring_is_500_not_a_bad_body(
    registered_models: RegisteredModels,
    events: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    """An error the model raises (injected: the payload checks let no input reach one) is
    the service's failure, a 500 naming it; a body too deep to parse stays a 422."""

    def failing(self: ScoringModel, X: np.ndarray) -> np.ndarray:
        raise error

    token = "t" * 32
    path = f"/models/{registered_models.xgb}/score"
    with tracking_uri(registered_models.tracking_uri), in_process_server(token) as url:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        with client:
            assert client.post(path, json={"events": events[:5]}).status_code == 200
            monkeypatch.setattr(ScoringModel, "probabilities", failing)
            failed = client.post(path, json={"events": events[:5]}, timeout=30)
            deep = b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}"
            unreadable = client.post(
                path, content=deep, headers={"content-type": "application/json"}, timeout=30
            )
    assert failed.status_code == 500, failed.text
    detail = failed.json()["detail"]
    assert f"{type(error).__name__}: {error}" in detail and "request was not at fault" in detail
    assert unreadable.status_code == 422
    assert "nested deeper than the parser allows" in unreadable.json()["detail"]
