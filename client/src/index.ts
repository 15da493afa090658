/** The Node entry (and bundlers without the browser condition). */
export * from './shared.js';
export { fileStorage } from './file-storage.js';
