import { t } from '../../i18n';
import { ApiError } from '../../lib/api';

export function Loading() {
  return <p className="muted" role="status">{t.common.loading}</p>;
}

export function ErrorNote({ error, retry }: { error: unknown; retry?: () => void }) {
  const msg = error instanceof ApiError ? `${t.common.error} (${error.status}: ${error.message})` : t.common.error;
  return (
    <p className="error" role="alert">
      {msg} {retry && <button type="button" onClick={retry}>{t.common.retry}</button>}
    </p>
  );
}
