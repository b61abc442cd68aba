/** The fault proxy lives in src/aws so the demo can use it; tests import it from here. */
export { startFaultProxy, type FaultProxy, type FaultRule, type FaultKind, type FaultProxyStats } from '../../src/aws/fault-proxy.js';
