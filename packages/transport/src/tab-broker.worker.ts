// The tab-link broker (tab-links.ts) as a SharedWorker: one per browser profile and build, shared
// by every PeerTrain tab of that profile. It only introduces tabs to each other; data flows tab to tab.
import { TabBroker, locksLiveness } from './tab-links.ts';

const broker = new TabBroker(locksLiveness(navigator.locks));
(globalThis as unknown as { onconnect: ((e: MessageEvent) => void) | null }).onconnect = (e) => {
  const port = e.ports[0];
  if (port) broker.attach(port);
};
