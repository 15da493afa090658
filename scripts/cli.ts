/** The argument handling the operator CLIs (`npm run users`, `npm run keys`) share. */
import { parseArgs as parseNodeArgs } from 'node:util';
import { SERVICE_NAME } from '../lib/platform/log.js';

/**
 * The operators' audit trail: one JSON line on stderr per change, apart from the command's output,
 * in the Lambdas' shape (Powertools Logger: `level`, `message` = the event, `timestamp`, `service`),
 * so that one log query finds both. Identifiers only, never a password, hash or key.
 */
export function audit(actor: string, event: string, fields: Record<string, unknown>): void {
  console.error(JSON.stringify({ level: 'INFO', message: event, timestamp: new Date().toISOString(), service: SERVICE_NAME, ...fields, actor, osUser: process.env.USER }));
}

/** Wrong use of the command: printed with the usage, exit code 2. */
export class UsageError extends Error {}

export interface Args {
  command: string | undefined;
  /** The second positional, for the commands that take one (`sso add`). */
  subcommand?: string;
  options: Map<string, string | true>;
}

export interface ArgSpec {
  /** Options that take a value: `--name value` or `--name=value`. */
  values: ReadonlySet<string>;
  flags: ReadonlySet<string>;
  /** Options refused with a message of their own (say, a password on the command line). */
  refused?: Readonly<Record<string, string>>;
  /** Commands that take a subcommand, a second positional (`sso add`). */
  withSubcommand?: ReadonlySet<string>;
}

/** What node:util's parser says, in the words of this CLI's usage errors. */
function usageMessage(error: { code?: string; message: string }): string {
  const option = /'(-[^']*)'/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `Unknown option ${option ?? ''}`.trim();
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return `${option?.split(' ')[0] ?? 'An option'} needs a value`;
  return error.message;
}

/** The command (one positional) and its options, by node:util `parseArgs` (strict: unknown options refused). */
export function parseArgs(argv: string[], spec: ArgSpec): Args {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const name of spec.values) options[name] = { type: 'string' };
  for (const name of spec.flags) options[name] = { type: 'boolean' };
  for (const name of Object.keys(spec.refused ?? {})) options[name] ??= { type: 'string' };
  let parsed: ReturnType<typeof parseNodeArgs>;
  try {
    parsed = parseNodeArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(usageMessage(error as { code?: string; message: string }));
  }
  for (const [name, message] of Object.entries(spec.refused ?? {})) if (parsed.values[name] !== undefined) throw new UsageError(message);
  const positionals = spec.withSubcommand?.has(parsed.positionals[0] ?? '') ? 2 : 1;
  if (parsed.positionals.length > positionals) throw new UsageError(`Unexpected argument "${parsed.positionals[positionals]}"`);
  const values = new Map<string, string | true>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (value === true) values.set(name, true);
    else if (typeof value === 'string') {
      // `--email --aws`: a value that is an option is a missing value.
      if (value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      values.set(name, value);
    }
  }
  return { command: parsed.positionals[0], ...(positionals === 2 && parsed.positionals[1] !== undefined ? { subcommand: parsed.positionals[1] } : {}), options: values };
}

export function required(args: Args, name: string): string {
  const value = args.options.get(name);
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${name} is required`);
  return value.trim();
}

type ErrorClass = abstract new (...args: never[]) => Error;

export interface Cli {
  usage: string;
  spec: ArgSpec;
  /** Errors that mean "refused" (exit 1, their message alone); anything else is "Failed: …" (exit 1). */
  refusals: ErrorClass[];
  /** The command's work; what it returns is printed on stdout. */
  run: (args: Args) => Promise<string>;
}

/** Parse, answer --help, run, and exit: 0 done, 1 refused or failed, 2 bad usage (with the usage). */
export function runCli(cli: Cli): void {
  const main = async (): Promise<number> => {
    try {
      const args = parseArgs(process.argv.slice(2), cli.spec);
      if (args.options.has('help') || args.command === 'help') {
        console.log(cli.usage);
        return 0;
      }
      console.log(await cli.run(args));
      return 0;
    } catch (error) {
      if (error instanceof UsageError) {
        console.error(`${error.message}\n\n${cli.usage}`);
        return 2;
      }
      if (cli.refusals.some((refusal) => error instanceof refusal)) {
        console.error((error as Error).message);
        return 1;
      }
      console.error(`Failed: ${(error as Error).message}`);
      return 1;
    }
  };
  void main().then((code) => process.exit(code));
}
