export interface CorsConfiguration {
  allowedOrigins: string[];
  allowedHeaders: string[];
  allowedMethods: string[];
  maxAge: number;
}
/** API Gateway's CORS configuration for a `corsOrigins` value; false when it lists none. Throws on a malformed origin. */
export function corsConfiguration(raw: unknown): CorsConfiguration | false;
