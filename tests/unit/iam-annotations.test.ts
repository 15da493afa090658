import { describe, expect, it } from 'vitest';
import { ACCESS } from '../../infra/iam.js';
import { annotatedGrants, iamSource, unusedGrants } from '../../scripts/local-iam/unused-grants.js';

/** A small infra/iam.js, in its shape: a computed index key, comments above grants and at line ends. */
const SOURCE = `'use strict';
const SESSIONS_BY_USER = 'SessionsTable/index/by-user';
const ACCESS = {
  refresh: {
    UsersTable: ['dynamodb:BatchGetItem'],
    // Why the table is read at all (no annotation).
    // needs dynamodb:GetItem: a refresh that lost a race re-reads the session
    SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'],
  },
  // needs dynamodb:Query: above a function, not a grant
  login: {
    [SESSIONS_BY_USER]: ['dynamodb:Query'], // needs dynamodb:Query: MAX_SESSIONS_PER_USER's cap
    AttemptsTable: [
      'dynamodb:UpdateItem',
    ],
    // needs dynamodb:DeleteItem: not granted here
    UsersTable: ['dynamodb:UpdateItem'],
  },
};
module.exports = { ACCESS };
`;

const access = {
  refresh: { UsersTable: ['dynamodb:BatchGetItem'], SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'] },
  login: { 'SessionsTable/index/by-user': ['dynamodb:Query'], AttemptsTable: ['dynamodb:UpdateItem'], UsersTable: ['dynamodb:UpdateItem'] },
};

describe('"// needs <action>: <path>" comments in infra/iam.js', () => {
  it('explain the grant directly below them or on their line, a computed key taken by its position', () => {
    // Act
    const { annotated } = annotatedGrants(SOURCE, access);

    // Assess
    expect(Object.fromEntries(annotated)).toEqual({
      'refresh SessionsTable dynamodb:GetItem': 'a refresh that lost a race re-reads the session',
      'login SessionsTable/index/by-user dynamodb:Query': "MAX_SESSIONS_PER_USER's cap",
    });
  });

  it('are reported when they explain no grant: an action not granted there, or a comment above a function', () => {
    // Act
    const { problems } = annotatedGrants(SOURCE, access);

    // Assess
    expect(problems).toEqual([
      `infra/iam.js:16: "needs dynamodb:DeleteItem" above ACCESS.login['UsersTable'], which does not grant dynamodb:DeleteItem`,
      'infra/iam.js:10: "needs dynamodb:Query: above a function, not a grant" is not directly above a grant (Table: [...]) of ACCESS',
    ]);
  });

  it('cannot be matched when the literal is not ACCESS as loaded (a key added elsewhere), and say so', () => {
    // Act
    const { problems } = annotatedGrants(SOURCE, { ...access, me: { UsersTable: ['dynamodb:BatchGetItem'] } });

    // Assess
    expect(problems[0]).toMatch(/^infra\/iam\.js:3: ACCESS is not a plain literal here \(expected 3 functions\)/);
  });

  it('leave out of the unused grants only what they explain; what a call used is never unused', () => {
    // Prepare
    const { annotated } = annotatedGrants(SOURCE, access);
    const used = new Set(['refresh UsersTable dynamodb:BatchGetItem', 'refresh SessionsTable dynamodb:BatchGetItem', 'login AttemptsTable dynamodb:UpdateItem']);

    // Act
    const unused = unusedGrants(access, used, annotated);

    // Assess
    expect(unused).toEqual([{ fn: 'login', resource: 'UsersTable', action: 'dynamodb:UpdateItem' }]);
  });

  it('in infra/iam.js itself, each explain a grant it makes', () => {
    expect(annotatedGrants(iamSource(), ACCESS).problems).toEqual([]);
  });
});
