"""A FHIR client no one here wrote (fhirpy) creates, searches with _include, pages and updates
CarePlans and Tasks against a running server."""

from __future__ import annotations

from fhirpy import SyncFHIRClient


def test_fhirpy_referral_round_trip(live_server):
    fhir = SyncFHIRClient(live_server, extra_headers={"Content-Type": "application/fhir+json"})
    patient = fhir.resource("Patient", name=[{"family": "Okafor", "given": ["Chi"]}])
    patient.save()
    goal = fhir.resource(
        "Goal",
        lifecycleStatus="active",
        description={"text": "Attend the first follow-up visit"},
        subject=patient.to_reference(),
    )
    goal.save()
    plan = fhir.resource(
        "CarePlan",
        status="draft",
        intent="plan",
        subject=patient.to_reference(),
        goal=[goal.to_reference()],
    )
    plan.save()
    for i in range(5):
        fhir.resource(
            "Task",
            status="requested",
            intent="order",
            code={
                "coding": [
                    {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                ]
            },
            **{"for": patient.to_reference()},
            owner={"reference": "Organization/housing-first"},
            description=f"referral {i}",
        ).save()

    found = (
        fhir.resources("CarePlan")
        .search(subject=f"Patient/{patient.id}")
        .include("CarePlan", "goal")
        .fetch_raw()
    )
    kinds = sorted(e["resource"]["resourceType"] for e in found.entry)
    assert kinds == ["CarePlan", "Goal"]

    tasks = fhir.resources("Task").search(owner="Organization/housing-first").limit(2)
    all_tasks = tasks.fetch_all()  # follows the server's next links
    assert len(all_tasks) == 5
    assert len({t.id for t in all_tasks}) == 5
    assert tasks.count() == 5

    plan["status"] = "active"
    plan.save()
    assert fhir.reference("CarePlan", plan.id).to_resource()["status"] == "active"
    assert fhir.resources("CarePlan").search(status="active").count() == 1

    task = all_tasks[0]
    task["status"] = "accepted"
    task.save()
    accepted = fhir.resources("Task").search(status="accepted").fetch_all()
    assert [t.id for t in accepted] == [task.id]
