import { useEffect, useRef, useState } from 'react';
import { toCanvas } from 'qrcode';
import { workerShareLink } from '../params.ts';

const COPIED_MS = 1500;

/** The link (and QR code, drawn locally) that turns another tab or device into a worker of this room. */
export function ShareCard(props: { room: string; origin: string }) {
  const link = workerShareLink(props.origin, props.room);
  const canvas = useRef<HTMLCanvasElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const [qrError, setQrError] = useState<string | null>(null);

  useEffect(() => {
    const el = canvas.current;
    if (!el) return;
    let live = true;
    toCanvas(el, link, { width: 168, margin: 1, errorCorrectionLevel: 'M' }).then(
      () => live && setQrError(null),
      (err: unknown) => live && setQrError(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      live = false;
    };
  }, [link]);

  useEffect(() => {
    if (copied === null) return;
    const t = setTimeout(() => setCopied(null), COPIED_MS);
    return () => clearTimeout(t);
  }, [copied]);

  const copy = (): void => {
    input.current?.select();
    navigator.clipboard.writeText(link).then(
      () => setCopied('yes'),
      () => setCopied('failed'),
    );
  };

  return (
    <section className="card share">
      <h2>Add workers</h2>
      <p className="muted">
        Open this link in other tabs or on other devices on the same network. Tabs of this browser talk to
        each other inside it; other devices over WebRTC.
      </p>
      <div className="share-link">
        <input
          ref={input}
          readOnly
          value={link}
          aria-label="worker link"
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" onClick={copy}>
          {copied === 'yes' ? 'Copied' : copied === 'failed' ? 'Select + copy' : 'Copy'}
        </button>
      </div>
      <div className="share-qr">
        <canvas ref={canvas} aria-label="QR code of the worker link" />
        {qrError !== null && <p className="error-text">QR code failed: {qrError}</p>}
        <a href={link} target="_blank" rel="noreferrer">
          Open a worker tab
        </a>
      </div>
    </section>
  );
}
