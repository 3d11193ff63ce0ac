"""FHIR clients no one here wrote run a referral scenario against a running gateway: Patient,
ServiceRequest, Task requested → accepted → completed, then searched.

fhirpy has its own test (test_fhirpy_client.py); here: the SMART on FHIR Python client
(fhirclient) and, when Node is present, fhir-kit-client from npm."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parents[1] / "clients" / "node"
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}


@pytest.mark.slow  # subprocesses or a live server
def test_fhirclient_referral_scenario(live_server):
    from fhirclient import client
    from fhirclient.models.patient import Patient
    from fhirclient.models.servicerequest import ServiceRequest
    from fhirclient.models.task import Task

    server = client.FHIRClient(
        settings={"app_id": "fhir-gateway-tests", "api_base": live_server + "/"}
    ).server
    owner = f"Organization/{uuid.uuid4()}"
    patient = Patient(
        Patient({"name": [{"family": "Okafor", "given": ["Chi"]}], "gender": "female"}).create(
            server
        )
    )
    request = ServiceRequest(
        {
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "464131000124100"}]},
            "subject": {"reference": f"Patient/{patient.id}"},
        }
    )
    request = ServiceRequest(request.create(server))
    task = Task(
        {
            "status": "requested",
            "intent": "order",
            "code": TASK_CODE,
            "focus": {"reference": f"ServiceRequest/{request.id}"},
            "for": {"reference": f"Patient/{patient.id}"},
            "owner": {"reference": owner},
            "authoredOn": "2024-03-05T12:00:00Z",
        }
    )
    task = Task(task.create(server))
    assert task.status == "requested" and task.id

    for status in ("accepted", "completed"):
        task.status = status
        task.update(server)
        task = Task.read(task.id, server)  # fhirclient parses what the server stored
        assert task.status == status

    completed = list(
        Task.where({"owner": owner, "status": "completed"}).perform_resources_iter(server)
    )
    assert [t.id for t in completed] == [task.id]
    assert (
        list(Task.where({"owner": owner, "status": "requested"}).perform_resources_iter(server))
        == []
    )
    [bundle] = list(Task.where({"_id": task.id, "_include": "Task:focus"}).perform_iter(server))
    kinds = sorted(f"{e.resource.resource_type}/{e.resource.id}" for e in bundle.entry)
    assert kinds == [f"ServiceRequest/{request.id}", f"Task/{task.id}"]
    assert ServiceRequest.read(request.id, server).subject.reference == f"Patient/{patient.id}"


def _node_ready() -> str | None:
    """Why the Node client cannot run here (None when it can); installs it on first use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node or npm is not installed"
    if (NODE_DIR / "node_modules" / "fhir-kit-client").is_dir():
        return None
    try:
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"npm install fhir-kit-client failed: {exc}"
    if done.returncode != 0:
        return f"npm install fhir-kit-client failed: {done.stderr.strip()[-300:]}"
    return None


@pytest.mark.slow  # subprocesses or a live server
def test_fhir_kit_client_referral_scenario(live_server):
    reason = _node_ready()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        ["node", "referral.mjs", live_server],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["statuses"] == ["requested", "accepted", "completed"]
    assert summary["found"] == sorted(
        [f"Task/{summary['task']}", f"ServiceRequest/{summary['serviceRequest']}"]
    )
    assert summary["versions"] == 3
