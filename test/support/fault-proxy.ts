/** The fault proxy lives in tools/ so the demo can use it; tests import it from here. */
export { startFaultProxy, type FaultProxy, type FaultRule, type FaultKind, type FaultProxyStats } from '../../tools/fault-proxy.js';
