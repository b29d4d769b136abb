import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { parseDashboardParams, withRoom } from './params.ts';
import { pageEmitter } from './headless.ts';
import { runMarkers } from './roomResume.ts';
import { randomId } from '@peertrain/protocol';
import '@peertrain/ui/theme.css';
import './dashboard.css';

// A bare URL reopens the room of a run a closed dashboard left unfinished (roomResume.ts).
const interrupted = runMarkers(typeof localStorage === 'undefined' ? null : localStorage).newestRoom();
const params = parseDashboardParams(location.search, () => interrupted ?? randomId(8));
if (params.roomGenerated || params.roomError) {
  history.replaceState(history.state, '', withRoom(location.search, params.room) + location.hash);
}

const el = document.getElementById('root');
if (!el) throw new Error('#root is missing from index.html');
const root = createRoot(el);
root.render(
  <StrictMode>
    <App params={params} origin={location.origin} emit={pageEmitter(window)} />
  </StrictMode>,
);
// Closing the tab unmounts the page, which closes the coordinator and frees its PeerJS id at once.
addEventListener('pagehide', () => root.unmount(), { once: true });
// A page restored from the back/forward cache was unmounted: start afresh.
addEventListener('pageshow', (e) => e.persisted && location.reload());
