/** The argument handling the operator CLIs (`npm run users`, `npm run keys`) share. */

/**
 * The operators' audit trail: one JSON line on stderr per change, apart from the command's output.
 * Identifiers only, never a password, hash or key.
 */
export function audit(actor: string, event: string, fields: Record<string, unknown>): void {
  console.error(JSON.stringify({ level: 'info', event, time: new Date().toISOString(), ...fields, actor, osUser: process.env.USER }));
}

/** Wrong use of the command: printed with the usage, exit code 2. */
export class UsageError extends Error {}

export interface Args {
  command: string | undefined;
  options: Map<string, string | true>;
}

export interface ArgSpec {
  /** Options that take a value: `--name value` or `--name=value`. */
  values: ReadonlySet<string>;
  flags: ReadonlySet<string>;
  /** Options refused with a message of their own (say, a password on the command line). */
  refused?: Readonly<Record<string, string>>;
}

export function parseArgs(argv: string[], spec: ArgSpec): Args {
  const options = new Map<string, string | true>();
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      if (command !== undefined) throw new UsageError(`Unexpected argument "${arg}"`);
      command = arg;
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const refusal = spec.refused?.[name];
    if (refusal) throw new UsageError(refusal);
    if (spec.flags.has(name)) {
      options.set(name, true);
    } else if (spec.values.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      options.set(name, value);
    } else {
      throw new UsageError(`Unknown option --${name}`);
    }
  }
  return { command, options };
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
