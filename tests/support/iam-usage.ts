import type { TestProject } from 'vitest/node';
import { definedAccess } from '../../scripts/local-iam/policy.js';
import { describeDenial, type IamProxy } from '../../scripts/local-iam/proxy.js';
import { annotatedGrants, iamSource, unusedGrants, type Grant } from '../../scripts/local-iam/unused-grants.js';

/**
 * Why this run cannot tell an unused grant from a path that did not run, or undefined when it can:
 * every e2e file ran, every test in them ran (no -t, tag filter or .only) and passed. A developer
 * running one file, or a run that failed anyway, is not told about grants it could not have used.
 */
export async function incompleteRun(project: TestProject): Promise<string | undefined> {
  const { testFiles } = await project.globTestFiles();
  const modules = project.vitest.state.getTestModules().filter((module) => module.project.name === project.name);
  const ran = new Set(modules.map((module) => module.moduleId));
  const missing = testFiles.filter((file) => !ran.has(file));
  if (missing.length > 0) return `${testFiles.length - missing.length} of the ${testFiles.length} e2e files ran`;
  if (project.vitest.config.testNamePattern) return 'a test name filter (-t) was given';
  if ((project.vitest.config.tagsFilter ?? []).length > 0) return 'a tag filter was given';
  for (const module of modules) {
    for (const test of module.children.allTests()) {
      if (test.options.mode === 'only') return `.only in ${module.relativeModuleId}`;
    }
    if (module.state() !== 'passed') return `${module.relativeModuleId} ${module.state()}`;
  }
  return undefined;
}

export interface IamFindings {
  /** What must fail the run: denials, and (in a complete run) grants nothing used. */
  failures: string[];
  /** What .test-output/iam-usage.json holds: each function's calls, by resource, and the check's outcome. */
  report: Record<string, unknown>;
}

const row = (grant: Grant) => `  ${grant.fn.padEnd(18)} ${grant.resource.padEnd(28)} ${grant.action}`;

/**
 * The e2e run's IAM findings. Any denial fails it: a Lambda's call outside its role answers 500 in AWS.
 * In a complete run, so does a grant no call used that no `// needs` comment in infra/iam.js explains.
 */
export function iamFindings(proxy: IamProxy, incomplete: string | undefined): IamFindings {
  const failures: string[] = [];
  const access = definedAccess();
  if (proxy.denials.length > 0) {
    const distinct = [...new Set(proxy.denials.map(describeDenial))];
    failures.push(`DynamoDB calls refused by the local IAM check (a 500 in AWS); grant them in infra/iam.js:\n${distinct.map((line) => `  ${line}`).join('\n')}`);
  }
  let unused: Grant[] | undefined;
  if (incomplete === undefined) {
    const { annotated, problems } = annotatedGrants(iamSource(), access);
    failures.push(...problems);
    unused = unusedGrants(access, proxy.used, annotated);
    if (unused.length > 0) {
      failures.push(
        'Grants in infra/iam.js that no e2e path used: remove each, or name the path that needs it in a comment ' +
          `directly above its line, "// needs <action>: <path>" (docs/local-stack.md):\n${unused.map(row).join('\n')}`,
      );
    }
  }
  const used: Record<string, Record<string, string[]>> = {};
  for (const id of [...proxy.used].sort()) {
    const [fn, resource, action] = id.split(' ') as [string, string, string];
    ((used[fn] ??= {})[resource] ??= []).push(action);
  }
  return {
    failures,
    report: {
      used,
      denials: proxy.denials,
      unusedGrants: unused ?? `not checked: ${incomplete}`,
    },
  };
}
