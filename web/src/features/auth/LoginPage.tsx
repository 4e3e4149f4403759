import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useNavigate, useSearchParams } from 'react-router-dom';
import { t } from '../../i18n';
import { ApiError, fetchAuthConfig, signIn } from '../../lib/api';
import { oidcLoginUrl, rememberNext, safeNext, takeNext } from '../../lib/auth';

function reasonText(reason: string | null): string {
  if (reason === 'expired') return t.login.expired;
  if (reason === 'csrf') return t.login.csrf;
  if (reason === 'signed-out') return t.login.signedOut;
  return '';
}

function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 401) return t.login.bad;
    if (e.status === 429) return t.login.tooMany(e.retryAfterS ?? 60);
    return t.login.failed(e.message);
  }
  return t.login.failed(String((e as Error)?.message ?? e));
}

// The login page (security on, nobody signed in). After signing in, back to where the person was
// (?next=, a path of this origin only). With the node's OIDC login configured (GET /auth/config),
// also "Sign in with <issuer>": a plain link (a full page load) to the node's /auth/oidc/login,
// which goes to the issuer and comes back signed in.
export function LoginPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const note = reasonText(params.get('reason'));
  const config = useQuery({ queryKey: ['auth-config'], queryFn: ({ signal }) => fetchAuthConfig(signal), staleTime: Infinity, retry: false });
  const oidcUrl = oidcLoginUrl(config.data);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await signIn(name.trim(), password);
      takeNext(); // an OIDC login started and abandoned earlier does not redirect a later start
      navigate(safeNext(params.get('next')), { replace: true });
    } catch (err) {
      setError(errorText(err));
      setPassword('');
      setBusy(false);
    }
  };

  return (
    <main id="main" className="login" data-testid="login-page">
      <form className="login-form" onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
        <p className="brand" aria-hidden="true">{t.appName}</p>
        <h1 id="login-title">{t.login.title}</h1>
        {note && !error && <p className="muted" data-testid="login-note">{note}</p>}
        <label>
          {t.login.name}
          <input name="username" autoComplete="username" required autoFocus value={name} onChange={(e) => setName(e.target.value)} data-testid="login-name" />
        </label>
        <label>
          {t.login.password}
          <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} data-testid="login-password" />
        </label>
        {error && <p className="error" role="alert" data-testid="login-error">{error}</p>}
        <button type="submit" className="primary" disabled={busy} data-testid="login-submit">{busy ? t.login.busy : t.login.submit}</button>
        {oidcUrl && (
          <>
            <p className="login-or muted" aria-hidden="true">{t.login.or}</p>
            <a className="button-link" href={oidcUrl} data-testid="login-oidc" onClick={() => rememberNext(params.get('next') ?? '/')}>
              {t.login.withProvider(config.data?.oidc.name || t.login.oidcFallback)}
            </a>
          </>
        )}
      </form>
    </main>
  );
}
