import { describe, expect, it } from 'vitest';
import { UsageError, parseArgs, required, type ArgSpec } from '../../scripts/cli.js';

const SPEC: ArgSpec = {
  values: new Set(['email', 'stage']),
  flags: new Set(['aws', 'help']),
  refused: { password: 'Passwords are never given on the command line' },
};

function usageError(argv: string[]): string {
  try {
    parseArgs(argv, SPEC);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  return expect.fail(`accepted ${argv.join(' ')}`);
}

describe('the operator CLIs\' argument parsing (node:util parseArgs)', () => {
  it('reads one command, values in both spellings and flags', () => {
    const args = parseArgs(['create', '--email', 'a@b.co', '--stage=prod', '--aws'], SPEC);
    expect(args.command).toBe('create');
    expect(Object.fromEntries(args.options)).toEqual({ email: 'a@b.co', stage: 'prod', aws: true });
    expect(required(args, 'email')).toBe('a@b.co');
    expect(parseArgs([], SPEC)).toEqual({ command: undefined, options: new Map() });
  });

  it.each([
    [['list', '--nope'], /^Unknown option --nope$/],
    [['list', '--email'], /^--email needs a value$/],
    [['list', '--email', '--aws'], /^--email needs a value$/],
    [['list', 'extra'], /^Unexpected argument "extra"$/],
    [['create', '--password', 'hunter2'], /never given on the command line/],
    [['create', '--password=hunter2'], /never given on the command line/],
    [['list', '--aws=yes'], /--aws/],
  ])('refuses %j with a usage error', (argv, message) => {
    expect(usageError(argv)).toMatch(message);
  });

  it('reports a missing required option by name', () => {
    expect(() => required(parseArgs(['disable'], SPEC), 'email')).toThrow(/--email is required/);
  });
});
