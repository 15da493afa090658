import type { TestProject } from 'vitest/node';
import { startDynalite } from '../../scripts/local-stack.js';

/** In-memory dynalite on a free loopback port for the integration tests; closed when they end. */
export default async function setup(project: TestProject) {
  const dynamo = await startDynalite(0);
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return () => dynamo.close();
}
