// Placeholder while the package is built (issue 20).
export type { paths } from './generated/openapi.js';
