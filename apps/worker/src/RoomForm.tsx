import type { ComputePlace, WireError } from '@peertrain/protocol';
import { BackendOptions } from '@peertrain/ui';
import type { BackendChoice } from './workerParams.ts';

/** Asks for the room when the link had none (a plain GET form: it reloads the page with ?room=). */
export function RoomForm(props: { backend: BackendChoice; compute: ComputePlace; error: WireError | null }) {
  return (
    <form className="card room-form" method="get">
      <h2>Join a training room</h2>
      <p className="muted">Enter the room shown on the dashboard, or open the dashboard's link or QR code.</p>
      <label className="field">
        <span>room</span>
        <input
          name="room"
          required
          autoFocus
          autoCapitalize="none"
          autoComplete="off"
          spellCheck={false}
          pattern="[a-z0-9][a-z0-9\-]{0,31}"
          title="1-32 characters: a-z, 0-9 and -"
          placeholder="e.g. k3x9q2mf"
        />
      </label>
      <label className="field">
        <span>backend</span>
        <select name="backend" defaultValue={props.backend}>
          <BackendOptions autoLabel="auto (fastest measured)" />
        </select>
      </label>
      <label className="field">
        <span>compute on</span>
        <select name="compute" defaultValue={props.compute}>
          <option value="page">this page (default)</option>
          <option value="thread">a thread of its own (for devices with cores to spare)</option>
        </select>
      </label>
      {props.error && (
        <p className="error-text" role="alert">
          {props.error.message}
        </p>
      )}
      <button type="submit" className="primary">
        Join
      </button>
    </form>
  );
}
