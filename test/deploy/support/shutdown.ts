import { SOCKET_GRACE_MS, STOP_SERVICES_MS } from '../../../src/shutdown';

/**
 * How long the service may still run after SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS: sockets
 * still open are destroyed SOCKET_GRACE_MS later, then stopServices waits up to
 * STOP_SERVICES_MS before the logs are flushed and the process exits.
 */
export const AFTER_DRAIN_MS = SOCKET_GRACE_MS + STOP_SERVICES_MS;
