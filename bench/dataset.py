"""A realistic care-coordination data set, written through the bulk path (``store.bulk``).

A year of psychiatric discharges: each patient (MR identifier, name, address, telecom) has one to
three inpatient encounters, each finished with a discharge and diagnosed with ICD-10-CM F-codes,
and after each discharge a CarePlan with its CareTeam, Goals, ServiceRequests and one referral Task
per request, owned by one of 50 partner organisations (a few large, many small). Task statuses
follow their age (a fresh referral is still requested, a months-old one mostly completed or
rejected) and so does ``meta.lastUpdated``: spread over the year, with recent weeks busiest in
changes, as ``Task?owner=…&_lastUpdated=gt…`` polling sees it. About 26 resources per patient.

Everything is a function of (seed, patient number), so a data set can be extended or resumed
batch by batch: ``fill(url, target)`` loads only the batches that are missing.

    python -m bench.dataset postgresql+psycopg://postgres@127.0.0.1/fhir_bench_scale 1000000
"""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

__all__ = [
    "PER_PATIENT",
    "BATCH",
    "directory",
    "patient_resources",
    "fill",
    "anchor_of",
    "PARTNERS",
]

SEED = 11
BATCH = 250  # patients per transaction
PER_PATIENT = (
    26.6  # measured mean of patient_resources(): sizes the number of patients for a target
)
PARTNERS = 50
HOSPITALS = 5
PRACTITIONERS = 120
DAYS = 365
DIRECTORY_ID = "care-coordination"

_ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
_SCT = "http://snomed.info/sct"
_SERVICE = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_CAREPLAN_ID = "http://fhir-gateway.org/fhir/careplan-key"

DIAGNOSES = [  # (code, display, weight)
    ("F20.9", "Schizophrenia, unspecified", 8),
    ("F25.0", "Schizoaffective disorder, bipolar type", 4),
    ("F31.2", "Bipolar disorder, current episode manic severe with psychotic features", 5),
    ("F31.4", "Bipolar disorder, current episode depressed, severe, without psychotic features", 5),
    ("F32.2", "Major depressive disorder, single episode, severe without psychotic features", 10),
    ("F33.1", "Major depressive disorder, recurrent, moderate", 8),
    ("F33.2", "Major depressive disorder, recurrent severe without psychotic features", 9),
    ("F41.1", "Generalized anxiety disorder", 6),
    ("F43.10", "Post-traumatic stress disorder, unspecified", 6),
    ("F60.3", "Borderline personality disorder", 4),
    ("F10.20", "Alcohol dependence, uncomplicated", 6),
    ("F11.20", "Opioid dependence, uncomplicated", 4),
    ("F14.20", "Cocaine dependence, uncomplicated", 2),
    ("F12.20", "Cannabis dependence, uncomplicated", 2),
    ("F17.210", "Nicotine dependence, cigarettes", 3),
]
SERVICES = [  # (system, code, display)
    (_SCT, "183524004", "Referral to psychiatry service"),
    (_SERVICE, "therapy-intake", "Psychotherapy intake"),
    (_SERVICE, "crisis-follow-up-call", "Crisis follow-up call"),
    (_SERVICE, "housing-support", "Housing support"),
    (_SERVICE, "peer-recovery-support", "Peer recovery support"),
    (_SERVICE, "addiction-treatment", "Addiction treatment"),
    (_SERVICE, "supported-employment", "Supported employment (IPS)"),
    (_SCT, "430193006", "Medication reconciliation"),
    (_SERVICE, "family-psychoeducation", "Family psychoeducation"),
    (_SERVICE, "peer-support-group", "Peer support group"),
    (_SERVICE, "safety-crisis-plan", "Safety and crisis plan"),
    (_SERVICE, "depression-monitoring", "Depression symptom monitoring"),
    (_SERVICE, "trauma-focused-therapy", "CBT or trauma-focused therapy"),
]
GOALS = [
    "No readmission within 30 days",
    "Attend a psychiatry follow-up within 7 days",
    "Stable housing within 60 days",
    "Take medication as prescribed",
    "Engage in psychotherapy",
    "Abstinence from alcohol and drugs",
    "Return to work or training",
    "Safety plan in place",
]
FAMILY = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Müller",
    "Kowalski",
    "O'Brien",
    "Novak",
    "Schmidt",
    "Olsen",
    "Murphy",
    "Kelly",
    "Price",
    "Bennett",
]
GIVEN_F = [
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Ana",
    "Maria",
    "Emily",
    "Ashley",
    "Michelle",
    "Amanda",
    "Olivia",
    "Sofia",
]
GIVEN_M = [
    "James",
    "Robert",
    "John",
    "Michael",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Jose",
    "Luis",
    "Kevin",
    "Brian",
    "Noah",
    "Liam",
]
CITIES = [
    ("Springfield", "62701"),
    ("Springfield", "62702"),
    ("Springfield", "62703"),
    ("Chatham", "62629"),
    ("Rochester", "62563"),
    ("Sherman", "62684"),
    ("Decatur", "62521"),
    ("Jacksonville", "62650"),
    ("Lincoln", "62656"),
    ("Taylorville", "62568"),
    ("Petersburg", "62675"),
    ("Auburn", "62615"),
]
STREETS = [
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Washington St",
    "Lincoln Ave",
    "Cedar Ln",
    "Park Rd",
    "Elm St",
    "Monroe St",
    "Adams St",
    "Walnut St",
    "Jefferson Ave",
]
# Task status by age of the referral: (status, weight) per band of days since the discharge.
_STATUS_BANDS = [
    (3, [("requested", 70), ("accepted", 18), ("in-progress", 5), ("rejected", 7)]),
    (
        14,
        [
            ("requested", 20),
            ("accepted", 30),
            ("in-progress", 35),
            ("completed", 8),
            ("rejected", 7),
        ],
    ),
    (
        60,
        [
            ("requested", 5),
            ("accepted", 5),
            ("in-progress", 35),
            ("completed", 45),
            ("rejected", 7),
            ("cancelled", 3),
        ],
    ),
    (
        10**6,
        [
            ("requested", 3),
            ("in-progress", 4),
            ("completed", 75),
            ("rejected", 10),
            ("cancelled", 8),
        ],
    ),
]
_CHANGE_DAYS = {
    "requested": (0, 0),
    "accepted": (0, 2),
    "rejected": (0, 3),
    "in-progress": (1, 10),
    "completed": (7, 60),
    "cancelled": (2, 30),
}


# -- the directory ---------------------------------------------------------------------------------


def partner_id(n: int) -> str:
    return f"partner-{n:02d}"


def partner_weights() -> list[float]:
    """A few large partners, many small (Zipf-like): the largest gets ~10% of referrals."""
    return [1 / (rank + 1) ** 0.8 for rank in range(PARTNERS)]


def _instant(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(when: datetime, *labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"lastUpdated": _instant(when)}
    if labels:
        meta["security"] = list(labels)
    return meta


def directory(anchor: datetime) -> list[dict[str, Any]]:
    """Organizations (care coordination, hospitals, partners) and practitioners."""
    rng = random.Random(SEED)
    made = _meta(anchor - timedelta(days=DAYS + 30))
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Organization",
            "id": DIRECTORY_ID,
            "meta": {**made, "lastUpdated": _instant(anchor)},
            "active": True,
            "name": "Care coordination",
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                            "code": "prov",
                        }
                    ]
                }
            ],
        }
    ]
    for n in range(HOSPITALS):
        out.append(
            {
                "resourceType": "Organization",
                "id": f"hospital-{n}",
                "meta": made,
                "active": True,
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.7", "value": f"H{n:03d}"}],
                "name": f"{CITIES[n][0]} Behavioral Health Hospital {n}",
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                "code": "prov",
                            }
                        ]
                    }
                ],
            }
        )
    for n in range(PARTNERS):
        city, zip_code = rng.choice(CITIES)
        out.append(
            {
                "resourceType": "Organization",
                "id": partner_id(n),
                "meta": made,
                "active": True,
                "name": f"{rng.choice(FAMILY)} {rng.choice(['Community', 'Recovery', 'Housing', 'Family'])} "
                f"{rng.choice(['Services', 'Center', 'Network', 'Alliance'])} {n}",
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                "code": "cg",
                            }
                        ]
                    }
                ],
                "telecom": [{"system": "phone", "value": f"217-555-{1000 + n:04d}"}],
                "address": [
                    {
                        "line": [f"{rng.randint(1, 999)} {rng.choice(STREETS)}"],
                        "city": city,
                        "state": "IL",
                        "postalCode": zip_code,
                    }
                ],
            }
        )
    for n in range(PRACTITIONERS):
        out.append(
            {
                "resourceType": "Practitioner",
                "id": f"practitioner-{n}",
                "meta": made,
                "active": True,
                "identifier": [
                    {"system": "http://hl7.org/fhir/sid/us-npi", "value": f"{1234500000 + n}"}
                ],
                "name": [
                    {
                        "family": rng.choice(FAMILY),
                        "given": [rng.choice(GIVEN_F + GIVEN_M)],
                        "prefix": ["Dr."],
                    }
                ],
            }
        )
    return out


# -- one patient -----------------------------------------------------------------------------------


class _Patient:
    """Builds one patient's resources from its own random stream."""

    def __init__(self, number: int, anchor: datetime) -> None:
        self.rng = random.Random(SEED * 1_000_003 + number)
        self.number = number
        self.anchor = anchor
        self.out: list[dict[str, Any]] = []
        self.id = self.new_id()
        self.ref = f"Patient/{self.id}"
        self.hospital = self.rng.randrange(HOSPITALS)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def pick(self, weighted: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        return self.rng.choices(weighted, weights=[w[-1] for w in weighted])[0]

    def build(self) -> list[dict[str, Any]]:
        rng = self.rng
        stays = sorted(rng.random() * DAYS for _ in range(rng.choices((1, 2, 3), (35, 40, 25))[0]))
        last = self.anchor
        for days_ago in reversed(stays):  # the oldest first; discharges spread evenly over the year
            last = self.episode(self.anchor - timedelta(days=days_ago))
        self.out.insert(0, self.patient(last))  # as the last discharge's ADT left it
        if rng.random() < 0.6:
            self.out.append(self.related_person())
        return self.out

    def patient(self, when: datetime) -> dict[str, Any]:
        rng = self.rng
        female = rng.random() < 0.52
        city, zip_code = rng.choice(CITIES)
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 64))
        return {
            "resourceType": "Patient",
            "id": self.id,
            "meta": _meta(when),
            "identifier": [
                {
                    "use": "usual",
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "MR",
                            }
                        ]
                    },
                    "system": f"urn:oid:2.16.840.1.113883.3.7.{self.hospital}",
                    "value": f"MRN{self.number:08d}",
                }
            ],
            "active": True,
            "name": [
                {
                    "use": "official",
                    "family": rng.choice(FAMILY),
                    "given": [rng.choice(GIVEN_F if female else GIVEN_M)],
                }
            ],
            "telecom": [
                {
                    "system": "phone",
                    "value": f"217-{rng.randrange(200, 999)}-{rng.randrange(10000):04d}",
                    "use": "mobile",
                }
            ],
            "gender": "female" if female else "male",
            "birthDate": birth.isoformat(),
            "address": [
                {
                    "use": "home",
                    "line": [f"{rng.randint(1, 4999)} {rng.choice(STREETS)}"],
                    "city": city,
                    "state": "IL",
                    "postalCode": zip_code,
                }
            ],
            "communication": [
                {
                    "language": {
                        "coding": [
                            {
                                "system": "urn:ietf:bcp:47",
                                "code": "es" if rng.random() < 0.12 else "en",
                            }
                        ]
                    },
                    "preferred": True,
                }
            ],
        }

    def related_person(self) -> dict[str, Any]:
        rng = self.rng
        return {
            "resourceType": "RelatedPerson",
            "id": self.new_id(),
            "meta": _meta(self.anchor - timedelta(days=DAYS)),
            "active": True,
            "patient": {"reference": self.ref},
            "relationship": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                            "code": rng.choice(["MTH", "FTH", "SPS", "SIB"]),
                        }
                    ]
                }
            ],
            "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN_F + GIVEN_M)]}],
            "telecom": [{"system": "phone", "value": f"217-555-{rng.randrange(10000):04d}"}],
        }

    def episode(self, discharged: datetime) -> datetime:
        """An inpatient stay and what follows its discharge; returns the discharge time."""
        rng = self.rng
        admitted = discharged - timedelta(days=rng.randint(3, 21), hours=rng.randrange(8))
        enc_id = self.new_id()
        conditions = [self.condition(enc_id, admitted) for _ in range(rng.choice((1, 1, 2, 2, 2)))]
        sensitive = any(_is_part2(c) for c in conditions)
        self.out.append(self.encounter(enc_id, admitted, discharged, conditions))
        self.out.extend(conditions)
        self.plan(enc_id, discharged, conditions, sensitive)
        return discharged

    def condition(self, enc_id: str, admitted: datetime) -> dict[str, Any]:
        code, display, _ = self.pick(DIAGNOSES)
        part2 = code.startswith("F1") and not code.startswith("F17")
        labels = (
            [
                {"system": _CONF, "code": "R"},
                {"system": _ACT, "code": "ETH"},
                {"system": _ACT, "code": "42CFRPart2"},
            ]
            if part2
            else [{"system": _ACT, "code": "PSY"}]
        )
        return {
            "resourceType": "Condition",
            "id": self.new_id(),
            "meta": _meta(admitted + timedelta(hours=2), *labels),
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "confirmed",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "encounter-diagnosis",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": _ICD10, "code": code, "display": display}],
                "text": display,
            },
            "subject": {"reference": self.ref},
            "encounter": {"reference": f"Encounter/{enc_id}"},
            "recordedDate": _instant(admitted + timedelta(hours=2)),
        }

    def encounter(
        self,
        enc_id: str,
        admitted: datetime,
        discharged: datetime,
        conditions: list[dict[str, Any]],
    ) -> dict[str, Any]:
        rng = self.rng
        return {
            "resourceType": "Encounter",
            "id": enc_id,
            "meta": _meta(discharged),
            "identifier": [
                {
                    "system": f"urn:oid:2.16.840.1.113883.3.7.{self.hospital}.1",
                    "value": f"V{self.number:08d}{rng.randrange(1000):03d}",
                }
            ],
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP",
                "display": "inpatient encounter",
            },
            "type": [
                {"coding": [{"system": _SCT, "code": "32485007", "display": "Hospital admission"}]}
            ],
            "serviceType": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0069", "code": "PSY"}
                ]
            },
            "subject": {"reference": self.ref},
            "participant": [
                {
                    "type": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                    "code": "ATND",
                                }
                            ]
                        }
                    ],
                    "individual": {
                        "reference": f"Practitioner/practitioner-{rng.randrange(PRACTITIONERS)}"
                    },
                }
            ],
            "period": {"start": _instant(admitted), "end": _instant(discharged)},
            "diagnosis": [
                {"condition": {"reference": f"Condition/{c['id']}"}, "rank": i + 1}
                for i, c in enumerate(conditions)
            ],
            "hospitalization": {
                "dischargeDisposition": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                            "code": rng.choice(["home", "home", "home", "other-hcf", "snf"]),
                        }
                    ]
                }
            },
            "serviceProvider": {"reference": f"Organization/hospital-{self.hospital}"},
        }

    def plan(
        self, enc_id: str, discharged: datetime, conditions: list[dict[str, Any]], sensitive: bool
    ) -> None:
        rng = self.rng
        age = (self.anchor - discharged).days
        labels = (
            [
                {"system": _CONF, "code": "R"},
                {"system": _ACT, "code": "ETH"},
                {"system": _ACT, "code": "42CFRPart2"},
            ]
            if sensitive
            else [{"system": _ACT, "code": "PSY"}]
        )
        plan_id, team_id = self.new_id(), self.new_id()
        done = age > 90
        goals = [
            self.goal(text, discharged, done)
            for text in rng.sample(GOALS, rng.choice((2, 2, 3, 3, 3)))
        ]
        requests, tasks = [], []
        for service in rng.sample(SERVICES, rng.choice((2, 3, 3, 4))):
            request, task = self.referral(service, plan_id, enc_id, discharged, conditions, labels)
            requests.append(request)
            tasks.append(task)
        changed = max([discharged, *(_last(t) for t in tasks)])
        team = self.careteam(team_id, enc_id, discharged, done)
        careplan = {
            "resourceType": "CarePlan",
            "id": plan_id,
            "meta": _meta(changed if done else discharged, *labels),
            "text": {
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Care plan after '
                f"the discharge on {discharged.date().isoformat()}</p><ul>"
                + "".join(f"<li>{g['description']['text']}</li>" for g in goals)
                + "</ul></div>",
            },
            "identifier": [{"system": _CAREPLAN_ID, "value": f"{enc_id}:discharge"}],
            "instantiatesCanonical": [
                "http://fhir-gateway.org/fhir/PlanDefinition/psychiatric-discharge"
            ],
            "status": "completed" if done else "active",
            "intent": "plan",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                            "code": "assess-plan",
                        }
                    ]
                }
            ],
            "title": "Care after psychiatric discharge",
            "subject": {"reference": self.ref},
            "encounter": {"reference": f"Encounter/{enc_id}"},
            "period": {
                "start": discharged.date().isoformat(),
                **({"end": (discharged + timedelta(days=90)).date().isoformat()} if done else {}),
            },
            "created": _instant(discharged),
            "author": {"reference": f"Organization/{DIRECTORY_ID}"},
            "careTeam": [{"reference": f"CareTeam/{team_id}"}],
            "addresses": [{"reference": f"Condition/{c['id']}"} for c in conditions],
            "goal": [{"reference": f"Goal/{g['id']}"} for g in goals],
            "activity": [
                {"reference": {"reference": f"ServiceRequest/{r['id']}"}} for r in requests
            ],
        }
        self.out += [careplan, team, *goals, *requests, *tasks]

    def goal(self, text: str, start: datetime, done: bool) -> dict[str, Any]:
        rng = self.rng
        achieved = (
            rng.choice(["achieved", "achieved", "not-achieved", "improving"])
            if done
            else "in-progress"
        )
        return {
            "resourceType": "Goal",
            "id": self.new_id(),
            "meta": _meta(start + timedelta(days=90) if done else start),
            "lifecycleStatus": "completed" if done else "active",
            "achievementStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                        "code": achieved,
                    }
                ]
            },
            "description": {"text": text},
            "subject": {"reference": self.ref},
            "startDate": start.date().isoformat(),
            "target": [
                {
                    "dueDate": (start + timedelta(days=rng.choice((7, 30, 60, 90))))
                    .date()
                    .isoformat()
                }
            ],
            "expressedBy": {"reference": f"Organization/{DIRECTORY_ID}"},
        }

    def careteam(self, team_id: str, enc_id: str, start: datetime, done: bool) -> dict[str, Any]:
        rng = self.rng
        return {
            "resourceType": "CareTeam",
            "id": team_id,
            "meta": _meta(start),
            "status": "inactive" if done else "active",
            "name": "Care team after discharge",
            "subject": {"reference": self.ref},
            "encounter": {"reference": f"Encounter/{enc_id}"},
            "period": {"start": start.date().isoformat()},
            "participant": [
                {
                    "role": [
                        {"coding": [{"system": _SCT, "code": "116154003", "display": "Patient"}]}
                    ],
                    "member": {"reference": self.ref},
                },
                {
                    "role": [
                        {
                            "coding": [
                                {"system": _SCT, "code": "768730001", "display": "Case manager"}
                            ]
                        }
                    ],
                    "member": {"reference": f"Organization/{DIRECTORY_ID}"},
                },
                {
                    "role": [
                        {
                            "coding": [
                                {"system": _SCT, "code": "80584001", "display": "Psychiatrist"}
                            ]
                        }
                    ],
                    "member": {
                        "reference": f"Practitioner/practitioner-{rng.randrange(PRACTITIONERS)}"
                    },
                },
            ],
            "managingOrganization": [{"reference": f"Organization/{DIRECTORY_ID}"}],
        }

    def referral(
        self,
        service: tuple[str, str, str],
        plan_id: str,
        enc_id: str,
        discharged: datetime,
        conditions: list[dict[str, Any]],
        labels: list[dict[str, str]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        rng = self.rng
        system, code, display = service
        owner = None if rng.random() < 0.04 else rng.choices(range(PARTNERS), weights=_WEIGHTS)[0]
        age = (self.anchor - discharged).days
        status = self.pick(next(b for limit, b in _STATUS_BANDS if age < limit))[0]
        if owner is None and status != "requested":
            owner = rng.choices(range(PARTNERS), weights=_WEIGHTS)[0]  # claimed meanwhile
        low, high = _CHANGE_DAYS[status]
        delay = timedelta(days=rng.uniform(low, high), minutes=rng.randrange(600))
        if (
            discharged + delay > self.anchor
        ):  # the change happened, at some time since the discharge
            delay = (self.anchor - discharged) * rng.random()
        changed = discharged + delay
        sr_id, task_id = self.new_id(), self.new_id()
        period = {
            "start": discharged.date().isoformat(),
            "end": (discharged + timedelta(days=rng.choice((3, 7, 14, 30)))).date().isoformat(),
        }
        owner_ref = (
            {"reference": f"Organization/{partner_id(owner)}"} if owner is not None else None
        )
        request = {
            "resourceType": "ServiceRequest",
            "id": sr_id,
            "meta": _meta(discharged, *labels),
            "basedOn": [{"reference": f"CarePlan/{plan_id}"}],
            "status": "completed"
            if status == "completed"
            else "revoked"
            if status in ("rejected", "cancelled")
            else "active",
            "intent": "order",
            "category": [
                {"coding": [{"system": _SCT, "code": "3457005", "display": "Patient referral"}]}
            ],
            "priority": "urgent" if code == "crisis-follow-up-call" else "routine",
            "code": {
                "coding": [{"system": system, "code": code, "display": display}],
                "text": display,
            },
            "subject": {"reference": self.ref},
            "encounter": {"reference": f"Encounter/{enc_id}"},
            "occurrencePeriod": period,
            "authoredOn": _instant(discharged),
            "requester": {"reference": f"Organization/{DIRECTORY_ID}"},
            **({"performer": [owner_ref]} if owner_ref else {}),
            "reasonReference": [{"reference": f"Condition/{c['id']}"} for c in conditions],
        }
        task: dict[str, Any] = {
            "resourceType": "Task",
            "id": task_id,
            "meta": _meta(changed, *labels),
            "status": status,
            "intent": "order",
            "priority": request["priority"],
            "code": {
                "coding": [
                    {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                ]
            },
            "description": display,
            "focus": {"reference": f"ServiceRequest/{sr_id}"},
            "for": {"reference": self.ref},
            "encounter": {"reference": f"Encounter/{enc_id}"},
            "authoredOn": _instant(discharged),
            "lastModified": _instant(changed),
            "requester": {"reference": f"Organization/{DIRECTORY_ID}"},
            "restriction": {"period": {"end": period["end"]}},
        }
        if owner_ref:
            task["owner"] = owner_ref
        if status in ("rejected", "cancelled"):
            task["statusReason"] = {
                "text": rng.choice(["No capacity", "Patient declined", "Not eligible"])
            }
        if status == "completed":
            task["output"] = [{"type": {"text": "outcome"}, "valueString": "Service delivered"}]
        return request, task


_WEIGHTS = partner_weights()


def _is_part2(condition: dict[str, Any]) -> bool:
    return any(label.get("code") == "42CFRPart2" for label in condition["meta"].get("security", []))


def _last(resource: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(resource["meta"]["lastUpdated"])


def patient_resources(number: int, anchor: datetime) -> list[dict[str, Any]]:
    """Patient ``number``'s resources: always the same for the same number and anchor."""
    return _Patient(number, anchor).build()


def patient_id(number: int) -> str:
    return _Patient(
        number, datetime(2000, 1, 1, tzinfo=UTC)
    ).id  # the first draw: the anchor plays no part


# -- loading ---------------------------------------------------------------------------------------


def anchor_of(database: Any) -> datetime | None:
    """The data set's "now" (the directory's lastUpdated), or None when none was loaded."""
    from fhir_gateway.store import repository

    with database.session(readonly=True) as session:
        stored = repository.read(session, "Organization", DIRECTORY_ID)
    return stored.last_updated if stored is not None else None


def _load_batch(args: tuple[str, int, int, datetime]) -> tuple[int, int, float]:
    url, first, last, anchor = args
    from fhir_gateway.store import bulk

    started = time.perf_counter()
    database = _worker_database(url)
    items = (r for n in range(first, last) for r in patient_resources(n, anchor))
    with database.session() as session:
        result = bulk.load(session, items, keep_last_updated=True, now=anchor)
    return result.total, result.index_rows, time.perf_counter() - started


_DATABASES: dict[str, Any] = {}


def _worker_database(url: str) -> Any:
    from fhir_gateway.store.db import Database

    if url not in _DATABASES:
        _DATABASES[url] = Database(url, pool_size=1)
    return _DATABASES[url]


def _missing_batches(database: Any, patients: int) -> list[int]:
    from sqlalchemy import select

    from fhir_gateway.store.tables import resources

    firsts = {patient_id(b * BATCH): b for b in range(math.ceil(patients / BATCH))}
    with database.session(readonly=True) as session:
        found = set(
            session.execute(
                select(resources.c.res_id).where(
                    resources.c.res_type == "Patient", resources.c.res_id.in_(list(firsts))
                )
            ).scalars()
        )
    return [b for first, b in firsts.items() if first not in found]


def fill(
    url: str, target: int, *, processes: int | None = None, log: Any = print
) -> dict[str, Any]:
    """Load the batches of patients a data set of ``target`` resources lacks; returns what it did."""
    from fhir_gateway.store import bulk
    from fhir_gateway.store.db import Database
    from fhir_gateway.store.migrate import upgrade

    database = Database(url)
    try:
        upgrade(database.engine)
        anchor = anchor_of(database)
        if anchor is None:
            anchor = datetime.now(UTC).replace(microsecond=0)
            with database.session() as session:
                bulk.load(session, directory(anchor), keep_last_updated=True, now=anchor)
        patients = math.ceil(target / PER_PATIENT)
        missing = _missing_batches(database, patients)
        loaded = _run_batches(url, missing, patients, anchor, processes or os.cpu_count() or 2, log)
        if missing:
            started = time.perf_counter()
            _vacuum(database)
            loaded["vacuum_analyze_s"] = time.perf_counter() - started
        return {"anchor": anchor.isoformat(), "patients": patients, **loaded}
    finally:
        database.dispose()


def _vacuum(database: Any) -> None:
    """VACUUM ANALYZE on PostgreSQL: planner statistics, and the visibility map that index-only
    scans need (autovacuum would get there, later); ANALYZE elsewhere."""
    from sqlalchemy import text

    from fhir_gateway.store import bulk

    if not database.is_postgres:
        with database.session() as session:
            bulk.analyze(session)
        return
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))


def _run_batches(
    url: str, batches: list[int], patients: int, anchor: datetime, processes: int, log: Any
) -> dict[str, Any]:
    if not batches:
        return {"loaded": 0, "index_rows": 0, "seconds": 0.0, "resources_per_s": 0.0}
    jobs = [(url, b * BATCH, min(patients, (b + 1) * BATCH), anchor) for b in batches]
    started = time.perf_counter()
    total = rows = 0
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        for done, (count, index_rows, _) in enumerate(pool.imap_unordered(_load_batch, jobs), 1):
            total, rows = total + count, rows + index_rows
            if done % 10 == 0 or done == len(jobs):
                elapsed = time.perf_counter() - started
                log(f"  {done}/{len(jobs)} batches, {total:,} resources, {total / elapsed:,.0f}/s")
    seconds = time.perf_counter() - started
    return {
        "loaded": total,
        "index_rows": rows,
        "seconds": seconds,
        "resources_per_s": total / seconds,
    }


if __name__ == "__main__":
    url = (
        sys.argv[1]
        if len(sys.argv) > 1
        else "postgresql+psycopg://postgres@127.0.0.1:5432/fhir_bench_scale"
    )
    target = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    print(fill(url, target))
