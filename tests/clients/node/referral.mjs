// A referral scenario through fhir-kit-client (npm), a FHIR client no one here wrote.
// Usage: node referral.mjs BASE_URL   — prints a JSON summary; exits non-zero on any error.

import { Client } from 'fhir-kit-client';

async function main(baseUrl) {
  const client = new Client({ baseUrl, customHeaders: { 'Content-Type': 'application/fhir+json' } });
  const unique = `node-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  const patient = await client.create({
    resourceType: 'Patient',
    body: {
      resourceType: 'Patient',
      identifier: [{ system: 'urn:example:node-client', value: unique }],
      name: [{ family: 'Mensah', given: ['Ama'] }],
      gender: 'female',
    },
  });
  const request = await client.create({
    resourceType: 'ServiceRequest',
    body: {
      resourceType: 'ServiceRequest',
      status: 'active',
      intent: 'order',
      code: { coding: [{ system: 'http://snomed.info/sct', code: '464131000124100' }] },
      subject: { reference: `Patient/${patient.id}` },
    },
  });
  let task = await client.create({
    resourceType: 'Task',
    body: {
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill' }] },
      focus: { reference: `ServiceRequest/${request.id}` },
      for: { reference: `Patient/${patient.id}` },
      owner: { reference: `Organization/${unique}` },
      authoredOn: new Date().toISOString(),
    },
  });
  const statuses = [task.status];
  for (const status of ['accepted', 'completed']) {
    task = await client.update({ resourceType: 'Task', id: task.id, body: { ...task, status } });
    statuses.push((await client.read({ resourceType: 'Task', id: task.id })).status);
  }
  const found = await client.search({
    resourceType: 'Task',
    searchParams: { owner: `Organization/${unique}`, status: 'completed', _include: 'Task:focus' },
  });
  const history = await client.resourceHistory({ resourceType: 'Task', id: task.id });
  const kinds = (found.entry || []).map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort();
  return {
    task: task.id,
    serviceRequest: request.id,
    statuses,
    found: kinds,
    versions: (history.entry || []).length,
  };
}

main(process.argv[2])
  .then((summary) => console.log(JSON.stringify(summary)))
  .catch((error) => {
    const detail = error.response ? JSON.stringify(error.response.data) : '';
    console.error(`fhir-kit-client failed: ${error.message} ${detail}`);
    process.exit(1);
  });
