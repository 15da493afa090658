/** Writes one line at each level through the service's logger: what a Lambda's log would hold. */
import { log } from '../../lib/platform/log.js';

log.debug('probe_debug', { n: 1 });
log.info('probe_info', { n: 2 });
log.warn('probe_warn', { n: 3 });
