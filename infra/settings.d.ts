/** environment variable -> param, for the settings the Lambdas read. */
export const SETTINGS: Record<string, string>;
/** environment variable -> param, for the settings the deployment reads (CORS). */
export const DEPLOYMENT_SETTINGS: Record<string, string>;
/** alias -> variable */
export const ALIASES: Record<string, string>;
/** `--param name=value` arguments for every setting present in `env`. */
export function paramArguments(env: Record<string, string | undefined>): string[];
