import { useState, type FormEvent } from 'react';
import { api } from '../api.ts';
import { ErrorMessage, useAction } from '../ui.tsx';

/** Sign-in with an operator API key. The key is kept only in sessionStorage (gone when the tab closes). */
export function SignIn({ onSignedIn }: { onSignedIn: (key: string) => void }) {
  const [key, setKey] = useState('');
  const action = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const k = key.trim();
    void action.run(async () => {
      // Any operator-only call proves the key: 401 unknown, 403 an application key.
      await api('GET', '/v1/applications', { query: { limit: 1 }, key: k });
      onSignedIn(k);
    });
  };
  return (
    <main id="main" className="signin">
      <h1>Sign in to the Lethe console</h1>
      <form onSubmit={submit}>
        <label htmlFor="operator-key">Operator API key</label>
        <input id="operator-key" name="operator-key" type="password" autoComplete="off" spellCheck={false}
          value={key} onChange={(e) => setKey(e.target.value)} required aria-describedby="key-help" autoFocus />
        <p id="key-help" className="muted small">
          The key printed on first start, or one from <code>npx lethe keys create --operator</code>.
          It is kept only in this browser tab and forgotten when the tab closes.
        </p>
        <button type="submit" disabled={action.busy || key.trim() === ''}>{action.busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
      <ErrorMessage error={action.error} />
    </main>
  );
}
