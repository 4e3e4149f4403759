// A stand-in for navigator.mediaSession and MediaMetadata (jsdom has neither): runs `body` with
// them installed and removes them afterwards, whatever `body` does.
import { vi } from 'vitest';

export interface FakeMediaSession {
  metadata: unknown;
  setActionHandler: () => void;
  setPositionState: () => void;
}

export function withMediaSession(body: (session: FakeMediaSession) => void): void {
  const session: FakeMediaSession = { metadata: null, setActionHandler: () => {}, setPositionState: () => {} };
  Object.defineProperty(navigator, 'mediaSession', { value: session, configurable: true });
  vi.stubGlobal(
    'MediaMetadata',
    class {
      constructor(init: MediaMetadataInit) {
        Object.assign(this, init);
      }
    },
  );
  try {
    body(session);
  } finally {
    vi.unstubAllGlobals();
    delete (navigator as { mediaSession?: unknown }).mediaSession;
  }
}
