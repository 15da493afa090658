import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../scripts/local-stack.js';

/**
 * openapi.yaml as the contract the end-to-end tests hold every response to: the status must be
 * documented for that operation, and the body must match its schema. So the document cannot
 * drift from the code without a test failing.
 */
const document = parse(readFileSync(join(PROJECT_ROOT, 'openapi.yaml'), 'utf8')) as Record<string, any>;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(document, 'openapi');

const pointerPart = (part: string) => part.replace(/~/g, '~0').replace(/\//g, '~1');

/** The document's path template a concrete path falls under (`/v1/auth/sessions/abc` -> `/v1/auth/sessions/{id}`). */
function templateOf(path: string): string {
  if (document.paths?.[path]) return path;
  const template = Object.keys(document.paths ?? {}).find((candidate) =>
    new RegExp(`^${candidate.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^/}]+\}/g, '[^/]+')}$`).test(path),
  );
  return template ?? path;
}

/** Why the response does not match the document, or undefined when it does. */
export function contractViolation(method: string, concretePath: string, status: number, body: unknown): string | undefined {
  const path = templateOf(concretePath);
  const operation = document.paths?.[path]?.[method.toLowerCase()];
  if (!operation) return `${method} ${path} is not in openapi.yaml`;
  let response = operation.responses?.[String(status)];
  if (!response) return `${method} ${path} answered ${status}, which openapi.yaml does not list`;
  let pointer = `#/paths/${pointerPart(path)}/${method.toLowerCase()}/responses/${status}`;
  if (response.$ref) {
    pointer = response.$ref as string;
    response = pointer.split('/').slice(1).reduce((node: any, part) => node?.[part], document);
  }
  // A redirect (the SSO endpoints' 302) has no body to hold to a schema.
  if (response && !response.content && (body === undefined || body === '')) return undefined;
  if (!response?.content?.['application/json']?.schema) return `${method} ${path} ${status} has no JSON schema in openapi.yaml`;
  const validate = ajv.compile({ $ref: `openapi${pointer}/content/application~1json/schema` });
  return validate(body) ? undefined : `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}`;
}
