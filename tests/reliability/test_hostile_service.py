"""Hostile requests against a real ``hepclf serve`` on 127.0.0.1: each gets a 4xx naming
what is wrong, before any work starts, and ``/health`` keeps answering within 2 s."""

from __future__ import annotations

import json
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot

from hepclf.scoring.outputs import inspect_output
from hepclf.scoring.service.jobs import CHECKED_INPUTS
from hepclf.tracking.registry import load_bundle
from tests.conftest import RegisteredModels, Server, tracking_uri
from tests.reliability.conftest import health_seconds, running_server, write_without_jets

pytestmark = pytest.mark.slow
BRANCHES = ["lep_pt", "lep_eta", "met", "nJet", "Jet_pt", "Jet_eta", "Jet_btag"]
FIRST_EVENT = {
    "lep_pt": 40.0,
    "lep_eta": 0.5,
    "met": 30.0,
    "nJet": 2,
    "Jet_pt": [50.0, 30.0],
    "Jet_eta": [0.1, -1.2],
    "Jet_btag": [0.9, 0.2],
}


def job(registered: RegisteredModels, server: Server, **fields: Any) -> dict[str, Any]:
    return {
        "model": registered.xgb,
        "inputs": [str(server.root / "data" / "signal.root")],
        "out": str(server.root / "out"),
    } | fields


def post_watching_health(server: Server, path: str, **kwargs: Any) -> tuple[Any, list[float]]:
    """POST while polling /health; the answer and every /health time, during and after."""
    with ThreadPoolExecutor(max_workers=1) as pool, server.client() as client:
        answer = pool.submit(client.post, path, **kwargs)
        times = []
        while not answer.done() and len(times) < 50:
            times.append(health_seconds(server.url))
        times += [health_seconds(server.url) for _ in range(3)]
        return answer.result(timeout=30), times


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ("lep_pt > 9**9**8", "'9 ** 9 ** 8', a number beyond 64-bit integers"),
        ("lep_pt > " + "9" * 400, "beyond 64-bit integers"),
        ("lep_pt > 1e999", "too large for a float"),
        ("abs(" * 150 + "lep_pt" + ")" * 150, "nested too deeply"),
        ("lep_pt + " * 500 + "1", "at most 2,000"),
        ("lep_pt.__class__", "attribute syntax"),
        ("lep_ptt > 30", "--selection reads missing 'lep_ptt' (did you mean 'lep_pt'"),
        ("Jet_pt > 30", "gives a list per event"),
        ("lep_pt > 'x'", "only numbers are allowed"),
    ],
)
def test_a_hostile_selection_is_422_before_any_work(
    registered_models: RegisteredModels, server: Server, selection: str, message: str
) -> None:
    payload = job(registered_models, server, selection=selection)
    answer, times = post_watching_health(server, "/jobs", json=payload)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"]
    assert max(times) < 2.0, times
    assert not (server.root / "out").exists()


def test_a_job_for_a_file_without_a_model_branch_is_422(
    registered_models: RegisteredModels, server: Server
) -> None:
    write_lep_only(server.root / "data" / "signal.root", server.root / "data" / "lep_only.root")
    inputs = [str(server.root / "data" / "lep_only.root"), str(server.root / "data" / "*.root")]
    with server.client() as client:
        answer = client.post("/jobs", json=job(registered_models, server, inputs=inputs))
    assert answer.status_code == 422
    assert "lep_only.root (tree 'Events'): model 'xgb'" in answer.json()["detail"]
    (server.root / "data" / "lep_only.root").unlink()


def write_lep_only(source: Path, dest: Path) -> None:
    """A ROOT file with ``source``'s lep_pt only: readable, but without the model's branches."""
    arrays = uproot.open(source)["Events"].arrays(["lep_pt"])
    with uproot.recreate(dest) as file:
        file["Events"] = {"lep_pt": arrays.lep_pt}


def test_a_job_opens_only_its_first_inputs_before_answering(
    registered_models: RegisteredModels, server: Server
) -> None:
    """The request opens the first CHECKED_INPUTS inputs and reads only the size and header
    of the others (any number of them): a later file that is not ROOT is still a 422, a later
    file without the model's branches fails in the job, by name, while the others complete."""
    data = server.root / "data" / "many"
    data.mkdir()
    for i in range(CHECKED_INPUTS):
        shutil.copy(server.root / "data" / "signal.root", data / f"a{i:02d}.root")
    lep_only, notes = data / "b_lep_only.root", data / "c_notes.root"
    write_lep_only(server.root / "data" / "signal.root", lep_only)
    notes.write_text("not a ROOT file\n")
    payload = job(registered_models, server, inputs=[str(data / "*.root")], out=str(data / "out"))
    refused, times = post_watching_health(server, "/jobs", json=payload)
    assert refused.status_code == 422, refused.text
    assert f"{notes}: not a ROOT file" in refused.json()["detail"]
    assert str(lep_only) not in refused.json()["detail"]  # not opened while the request waited
    notes.unlink()
    accepted, times_accepted = post_watching_health(server, "/jobs", json=payload)
    assert accepted.status_code == 202, accepted.text
    assert max(times + times_accepted) < 2.0
    with server.client() as client:
        status = wait_for_job(client, accepted.json()["id"])
    assert status["status"] == "failed", status
    assert status["error"] == f"1 of {CHECKED_INPUTS + 1} files failed"
    failed = [f for f in status["files"] if f["status"] == "failed"]
    assert [f["input"] for f in failed] == [str(lep_only)]
    assert "model 'xgb'" in failed[0]["error"] and "missing" in failed[0]["error"]
    scored = [f for f in status["files"] if f["status"] == "scored"]
    assert len(scored) == CHECKED_INPUTS and status["events"] == 5000 * CHECKED_INPUTS
    for result in scored:
        assert inspect_output(Path(result["output"]), "root", "Events").state == "complete"
    assert not Path(failed[0]["output"]).exists()


def nested(depth: int) -> bytes:
    return b'{"events": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.fixture(scope="module")
def columns(registered_models: RegisteredModels) -> list[str]:
    with tracking_uri(registered_models.tracking_uri):
        return load_bundle(f"models:/{registered_models.xgb}/1").columns


@pytest.mark.parametrize(
    ("where", "payload", "status", "named"),
    [
        ("score", {"events": [{"lep_pt": True}]}, 422, "events[0].lep_pt: expected a number"),
        ("score", {"events": [{"lep_pt": 10**400}]}, 422, "events[0].lep_pt: an integer"),
        ("score", {"events": [{"Jet_pt": [1, -(10**400)]}]}, 422, "events[0].Jet_pt[1]: an"),
        ("score", {"events": [{"met": 1e300}]}, 422, "events[0].met: 1e+300 is beyond"),
        ("score", {"events": "x", "version": 10**400}, 422, "version"),
        ("score", {"events": [], "version": True}, 422, "version"),
        ("score", {"columns": {"met": [1.0, 1e300]}}, 422, "columns.met[1]"),
        ("score", {"columns": {"met": [False]}}, 422, "columns.met[0]: expected a number"),
        ("jobs", {"inputs": ["/data/x\x00.root"]}, 422, "inputs"),
        ("jobs", {"out": "/tmp/\x00"}, 422, "out"),
        ("jobs", {"tree": "Events\x00"}, 422, "tree"),
        ("jobs", {"selection": "lep_pt > 1\x00"}, 422, "selection"),
        ("jobs", {"step_size": 10**400}, 422, "step_size"),
        ("jobs", {"step_size": True}, 422, "step_size"),
        ("jobs", {"version": 10**400}, 422, "version"),
        ("jobs", {"inputs": ["/" + "x" * 300 + ".root"]}, 422, "not a usable path"),
        ("jobs", {"overwrite": "yes please"}, 422, "overwrite"),
    ],
)
def test_hostile_payloads_are_4xx_naming_the_field(
    registered_models: RegisteredModels,
    server: Server,
    columns: list[str],
    where: str,
    payload: dict[str, Any],
    status: int,
    named: str,
) -> None:
    if where == "jobs":
        path, body = "/jobs", job(registered_models, server) | payload
        if "inputs" in payload and "\x00" not in payload["inputs"][0]:
            body["inputs"] = [str(server.root / payload["inputs"][0].lstrip("/"))]
    else:
        path, body = f"/models/{registered_models.xgb}/score", payload
        if "columns" in body:
            n = len(next(iter(body["columns"].values())))
            body = {"columns": {c: [1.0] * n for c in columns} | body["columns"]}
        elif isinstance(body["events"], list) and body["events"]:
            body = body | {"events": [FIRST_EVENT | e for e in body["events"]]}
    answer, times = post_watching_health(server, path, json=body)
    assert answer.status_code == status, answer.text
    assert named in answer.text
    assert max(times) < 2.0


def test_deeply_nested_json_is_422(registered_models: RegisteredModels, server: Server) -> None:
    path = f"/models/{registered_models.xgb}/score"
    headers = {"content-type": "application/json"}
    for depth in (50, 5000, 100_000):
        answer, times = post_watching_health(server, path, content=nested(depth), headers=headers)
        assert answer.status_code == 422, (depth, answer.text)
        assert max(times) < 2.0
    assert "nested deeper than the parser allows" in answer.json()["detail"]


def test_json_just_shallow_enough_to_parse_is_422(
    registered_models: RegisteredModels, server: Server
) -> None:
    """Near the parser's depth limit a body parses but is too deep to echo back in the
    validation error: still a 422 naming the field, never a 500."""
    headers = {"content-type": "application/json"}
    with server.client() as client:
        for depth in range(900, 1010):
            for path, prefix in [
                (f"/models/{registered_models.xgb}/score", b'{"events": '),
                ("/jobs", b'{"model": "m", "inputs": ["x"], "selection": '),
            ]:
                body = prefix + b"[" * depth + b"]" * depth + b"}"
                answer = client.post(path, content=body, headers=headers)
                assert answer.status_code == 422, (depth, path, answer.text)
                detail = answer.json()["detail"]
                named = "selection" if path == "/jobs" else "events"
                assert named in str(detail) or "nested deeper" in detail, (depth, detail)


def test_a_foreign_file_at_an_output_name_is_409(
    registered_models: RegisteredModels, server: Server
) -> None:
    out = server.root / "out409"
    out.mkdir()
    notes = out / "signal_scores.root"
    notes.write_text("not yours\n")
    payload = job(registered_models, server, out=str(out))
    with server.client() as client:
        refused = client.post("/jobs", json=payload)
        assert refused.status_code == 409, refused.text
        assert str(notes) in refused.json()["detail"]
        assert "not written by hepclf" in refused.json()["detail"]
        assert notes.read_text() == "not yours\n"
        accepted = client.post("/jobs", json=payload | {"overwrite": True})
        assert accepted.status_code == 202, accepted.text
        status = wait_for_job(client, accepted.json()["id"])
    assert status["status"] == "done", status
    assert inspect_output(notes, "root", "Events").state == "complete"


def wait_for_job(client: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (status := client.get(f"/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    return status


def test_events_without_jets_score_finitely(
    registered_models: RegisteredModels, server: Server, tmp_path: Path
) -> None:
    """Per request and as a job: events with empty collections get finite scores."""
    source = tmp_path / "nojets.root"
    empty = write_without_jets(registered_models.data / "signal.root", source)
    events = ak.to_list(uproot.open(source)["Events"].arrays(BRANCHES, entry_stop=200))
    assert events[0]["Jet_pt"] == [] and events[0]["nJet"] == 0
    shutil.copy(source, server.root / "data" / "nojets.root")
    with server.client() as client:
        answer = client.post(f"/models/{registered_models.xgb}/score", json={"events": events})
        assert answer.status_code == 200, answer.text
        scores = np.asarray(answer.json()["scores"])
        assert np.isfinite(scores).all() and len(scores) == 200
        inputs = [str(server.root / "data" / "nojets.root")]
        payload = job(registered_models, server, inputs=inputs, out=str(server.root / "nj"))
        submitted = client.post("/jobs", json=payload)
        assert submitted.status_code == 202, submitted.text
        status = wait_for_job(client, submitted.json()["id"])
    assert status["status"] == "done", status
    batch = uproot.open(server.root / "nj" / "nojets_scores.root")["Events"]["score_xgb"]
    batch_scores = batch.array(library="np")
    assert np.isfinite(batch_scores).all()
    np.testing.assert_allclose(batch_scores[:200], scores, rtol=1e-6, atol=1e-9)
    assert empty[0] == 0


def submit_long_job(registered: RegisteredModels, server: Server, client: Any) -> str:
    """Submit a job over 40 copies of the signal file in small steps; returns its id."""
    data = server.root / "data"
    for i in range(40):
        shutil.copy(data / "signal.root", data / f"copy{i:02d}.root")
    payload = job(registered, server, step_size=50)
    payload["inputs"] = [str(data / "copy*.root")]
    submitted = client.post("/jobs", json=payload)
    assert submitted.status_code == 202, submitted.text
    return submitted.json()["id"]


def test_sigterm_stops_the_server_and_its_job_within_seconds(
    registered_models: RegisteredModels, tmp_path: Path
) -> None:
    """A long job runs; /health stays fast; SIGTERM ends the server within seconds, the
    job is logged as stopped, complete outputs stay complete and no partial file is left."""
    with running_server(registered_models, tmp_path) as server:
        with server.client() as client:
            job_id = submit_long_job(registered_models, server, client)
            deadline = time.monotonic() + 60
            while not (status := client.get(f"/jobs/{job_id}").json())["files"]:
                assert status["status"] == "running" or status["status"] == "queued", status
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert max(health_seconds(server.url) for _ in range(10)) < 2.0
        start = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=20)
        assert time.monotonic() - start < 15
        log = server.log.read_text()
        assert f"job {job_id} stopped: the service shut down while the job ran" in log
        outputs = sorted((server.root / "out").iterdir())
        assert outputs and len(outputs) < 40
        assert not [p for p in outputs if p.name.endswith(".partial")]
        for output in outputs:
            assert inspect_output(output, "root", "Events").state == "complete"
        assert json.dumps(status)  # the job's answer was JSON throughout


def test_a_job_past_its_time_limit_fails_saying_so(
    registered_models: RegisteredModels, tmp_path: Path
) -> None:
    with running_server(registered_models, tmp_path, "--job-time-limit", "2") as server:
        with server.client() as client:
            status = wait_for_job(client, submit_long_job(registered_models, server, client), 60)
        assert status["status"] == "failed", status
        assert "the job ran longer than its limit of 2 s" in status["error"]
        assert status["finished"] - status["started"] < 10
        outputs = sorted((server.root / "out").iterdir())
        assert len(outputs) == len(status["files"]) < 40
        for output in outputs:
            assert inspect_output(output, "root", "Events").state == "complete"


@pytest.mark.parametrize(
    "path",
    ["/models/%00/score", "/models/a%00b/score", "/models/" + "x" * 5000 + "/score"],
)
def test_hostile_model_names_are_4xx(server: Server, path: str) -> None:
    with server.client() as client:
        answer = client.post(path, json={"events": [FIRST_EVENT]})
        assert 400 <= answer.status_code < 500, answer.text
        assert client.get("/jobs/%00").status_code == 404
