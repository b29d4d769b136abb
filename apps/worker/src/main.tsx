import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { RoomForm } from './RoomForm.tsx';
import { TopBar } from '@peertrain/ui';
import { parseWorkerParams } from './workerParams.ts';
import '@peertrain/ui/theme.css';
import './worker.css';

const params = parseWorkerParams(location.search);
const el = document.getElementById('root');
if (!el) throw new Error('#root is missing from index.html');
const root = createRoot(el);
root.render(
  <StrictMode>
    {params.room === null ? (
      <div className="page worker">
        <TopBar title="PeerTrain worker" />
        <main className="worker-main">
          <RoomForm backend={params.backend} compute={params.compute} error={params.error} />
        </main>
      </div>
    ) : (
      <App room={params.room} backend={params.backend} compute={params.compute} />
    )}
  </StrictMode>,
);
// Closing the tab leaves the room at once (the coordinator sees `leave`, not a timeout).
addEventListener('pagehide', () => root.unmount(), { once: true });
addEventListener('pageshow', (e) => e.persisted && location.reload());
