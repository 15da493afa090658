/**
 * Least privilege, the other way round: a grant of infra/iam.js's ACCESS that no path of a full e2e
 * run used is either too much, or needed by a path the suite does not reach (a race lost, a setting
 * no test stage uses). The latter must say so where the grant is, in a comment directly above it
 * (or at the end of its line):
 *
 *     // needs dynamodb:GetItem: a refresh that lost a race re-reads the session
 *     SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
 *
 * One `needs <action>: <path>` per action. The comments are read with TypeScript's parser, and each
 * grant is matched to ACCESS as loaded by position, so a computed key (`[SESSIONS_BY_USER]`) needs no
 * evaluating; a comment that names no grant is itself reported.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { grantId } from './proxy.js';
import type { Access } from './policy.js';

export const IAM_SOURCE = join(__dirname, '..', '..', 'infra', 'iam.js');

export interface Grant {
  fn: string;
  resource: string;
  action: string;
}

const NEEDS = /\bneeds (dynamodb:[A-Za-z]+): *(\S.*)$/;

/** Every (function, resource, action) ACCESS grants. */
export function grantsOf(access: Access): Grant[] {
  return Object.entries(access).flatMap(([fn, resources]) =>
    Object.entries(resources).flatMap(([resource, actions]) => actions.map((action) => ({ fn, resource, action }))),
  );
}

/** The grants a `// needs` comment in the source explains (grantId -> the path), and the comments that explain none. */
export function annotatedGrants(source: string, access: Access): { annotated: Map<string, string>; problems: string[] } {
  const file = ts.createSourceFile('iam.js', source, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const annotated = new Map<string, string>();
  const problems: string[] = [];
  const lineOf = (position: number) => file.getLineAndCharacterOfPosition(position).line + 1;
  const literal = findAccessLiteral(file);
  if (!literal) return { annotated, problems: ['infra/iam.js: no `const ACCESS = { ... }` found to read `// needs` comments from'] };

  const explained = new Set<number>();
  const functions = Object.keys(access);
  const mismatch = (node: ts.Node, expected: string | undefined) =>
    problems.push(`infra/iam.js:${lineOf(node.getStart(file))}: ACCESS is not a plain literal here (expected ${expected ?? 'nothing'}): its comments cannot be matched to its grants`);
  if (literal.properties.length !== functions.length) mismatch(literal, `${functions.length} functions`);
  literal.properties.forEach((fnNode, fnIndex) => {
    const fn = functions[fnIndex];
    if (!fn || !ts.isPropertyAssignment(fnNode) || !ts.isObjectLiteralExpression(fnNode.initializer) || !namedAs(fnNode, fn)) return mismatch(fnNode, fn);
    const resources = Object.keys(access[fn]!);
    if (fnNode.initializer.properties.length !== resources.length) mismatch(fnNode, `${resources.length} resources for ${fn}`);
    fnNode.initializer.properties.forEach((resourceNode, resourceIndex) => {
      const resource = resources[resourceIndex];
      if (!resource || !ts.isPropertyAssignment(resourceNode) || !namedAs(resourceNode, resource)) return mismatch(resourceNode, resource && `${fn}.${resource}`);
      for (const comment of commentsOf(source, resourceNode)) {
        const needs = NEEDS.exec(comment.text);
        if (!needs) continue;
        explained.add(comment.pos);
        const [, action, path] = needs;
        if (!access[fn]![resource]!.includes(action!)) {
          problems.push(`infra/iam.js:${lineOf(comment.pos)}: "needs ${action}" above ACCESS.${fn}['${resource}'], which does not grant ${action}`);
        } else {
          annotated.set(grantId(fn, resource, action!), path!.trim());
        }
      }
    });
  });
  // A `needs` comment anywhere else in ACCESS (above a function, after the last grant) explains nothing.
  for (const comment of commentsIn(source, literal)) {
    if (NEEDS.test(comment.text) && !explained.has(comment.pos)) {
      problems.push(`infra/iam.js:${lineOf(comment.pos)}: "${comment.text.trim()}" is not directly above a grant (Table: [...]) of ACCESS`);
    }
  }
  return { annotated, problems };
}

/** Grants no recorded call used and no comment explains, in ACCESS's order. */
export function unusedGrants(access: Access, used: ReadonlySet<string>, annotated: ReadonlyMap<string, string>): Grant[] {
  return grantsOf(access).filter((grant) => {
    const id = grantId(grant.fn, grant.resource, grant.action);
    return !used.has(id) && !annotated.has(id);
  });
}

/** infra/iam.js as it is on disk, for annotatedGrants. */
export const iamSource = () => readFileSync(IAM_SOURCE, 'utf8');

/** Whether a property is written with that name; a computed one (`[SESSIONS_BY_USER]`) is taken by its position. */
function namedAs(node: ts.PropertyAssignment, name: string): boolean {
  return ts.isComputedPropertyName(node.name) || (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name) ? node.name.text === name : false);
}

function findAccessLiteral(file: ts.SourceFile): ts.ObjectLiteralExpression | undefined {
  for (const statement of file.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const declaration of statement.declarationList.declarations) {
      if (ts.isIdentifier(declaration.name) && declaration.name.text === 'ACCESS' && declaration.initializer && ts.isObjectLiteralExpression(declaration.initializer)) {
        return declaration.initializer;
      }
    }
  }
  return undefined;
}

interface Comment {
  pos: number;
  text: string;
}

/** The comments directly above a property (after the previous one's line) and at the end of its line. */
function commentsOf(source: string, node: ts.Node): Comment[] {
  const afterComma = source[node.end] === ',' ? node.end + 1 : node.end;
  const ranges = [...(ts.getLeadingCommentRanges(source, node.pos) ?? []), ...(ts.getTrailingCommentRanges(source, afterComma) ?? [])];
  return ranges.map((range) => ({ pos: range.pos, text: source.slice(range.pos, range.end).replace(/^\/\/|^\/\*|\*\/$/g, '') }));
}

/** Every comment inside a node. */
function commentsIn(source: string, node: ts.Node): Comment[] {
  const comments: Comment[] = [];
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, false, ts.LanguageVariant.Standard, source.slice(node.pos, node.end));
  for (let token = scanner.scan(); token !== ts.SyntaxKind.EndOfFileToken; token = scanner.scan()) {
    if (token === ts.SyntaxKind.SingleLineCommentTrivia || token === ts.SyntaxKind.MultiLineCommentTrivia) {
      const text = scanner.getTokenText();
      comments.push({ pos: node.pos + scanner.getTokenStart(), text: text.replace(/^\/\/|^\/\*|\*\/$/g, '') });
    }
  }
  return comments;
}
