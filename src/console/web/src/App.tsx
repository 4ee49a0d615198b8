import { useEffect, useRef, useState } from 'react';
import { getKey, onUnauthorized, setKey } from './api.ts';
import { Link, match, navigate, useLocation } from './router.tsx';
import { SignIn } from './pages/SignIn.tsx';
import { Overview } from './pages/Overview.tsx';
import { Customers } from './pages/Customers.tsx';
import { CustomerPage } from './pages/Customer.tsx';
import { ReceiptPage } from './pages/Receipt.tsx';
import { Cases } from './pages/Cases.tsx';
import { CasePage } from './pages/Case.tsx';
import { Applications } from './pages/Applications.tsx';
import { ApplicationPage } from './pages/Application.tsx';
import { AuditLog } from './pages/Audit.tsx';
import { Settings } from './pages/Settings.tsx';
import { Exports } from './pages/Exports.tsx';
import { Deletions } from './pages/Deletions.tsx';
import { Keys } from './pages/Keys.tsx';
import { Jobs } from './pages/Jobs.tsx';

const NAV = [
  { to: '/', label: 'Overview' },
  { to: '/customers', label: 'Customers' },
  { to: '/cases', label: 'Deletion cases' },
  { to: '/deletions', label: 'Receipts' },
  { to: '/applications', label: 'Applications' },
  { to: '/audit', label: 'Audit log' },
  { to: '/keys', label: 'API keys' },
  { to: '/jobs', label: 'Jobs' },
  { to: '/exports', label: 'Exports' },
  { to: '/settings', label: 'Settings' },
];

function Page({ path, query }: { path: string; query: URLSearchParams }) {
  let m: Record<string, string> | null;
  if (path === '/') return <Overview />;
  if (path === '/customers') return <Customers />;
  if ((m = match('/customers/:id', path))) return <CustomerPage id={m.id!} />;
  if (path === '/deletions') return <Deletions query={query} />;
  if ((m = match('/deletions/:id', path))) return <ReceiptPage id={m.id!} />;
  if (path === '/keys') return <Keys />;
  if (path === '/jobs') return <Jobs />;
  if (path === '/cases') return <Cases query={query} />;
  if ((m = match("/cases/:id", path))) return <CasePage id={m.id!} query={query} />;
  if (path === '/applications') return <Applications query={query} />;
  if ((m = match('/applications/:id', path))) return <ApplicationPage id={m.id!} />;
  if (path === '/audit') return <AuditLog />;
  if (path === '/settings') return <Settings />;
  if (path === '/exports') return <Exports />;
  return (
    <section>
      <h1>Page not found</h1>
      <p>There is no console page at this address. <Link to="/">Back to the overview</Link>.</p>
    </section>
  );
}

export function App() {
  const [key, setKeyState] = useState<string | null>(getKey);
  const { path, query } = useLocation();
  const mainRef = useRef<HTMLElement>(null);
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [path]);

  useEffect(() => onUnauthorized(() => { setKey(null); setKeyState(null); }), []);
  // Move focus to the page's content on navigation, so screen readers announce the new page.
  useEffect(() => {
    const h = mainRef.current?.querySelector('h1');
    if (h instanceof HTMLElement) { h.tabIndex = -1; h.focus({ preventScroll: true }); }
    const title = h?.textContent;
    document.title = title ? `${title} · Lethe console` : 'Lethe console';
  }, [path, key]);

  if (!key) {
    return <SignIn onSignedIn={(k) => { setKey(k); setKeyState(k); }} />;
  }

  const signOut = () => {
    setKey(null);
    setKeyState(null);
    navigate('/', true);
  };
  const section = NAV.slice(1).find((n) => path === n.to || path.startsWith(`${n.to}/`))?.to
    ?? '/';

  return (
    <>
      <a className="skip" href="#main">Skip to content</a>
      <header className="top">
        <span className="brand">Lethe <span className="muted">console</span></span>
        <button type="button" className="secondary menu-toggle" aria-expanded={menuOpen} aria-controls="main-nav" onClick={() => setMenuOpen(!menuOpen)}>Menu</button>
        <nav aria-label="Main" id="main-nav" className={menuOpen ? 'open' : undefined}>
          <ul>
            {NAV.map((n) => (
              <li key={n.to}><Link to={n.to} aria-current={section === n.to ? 'page' : undefined}>{n.label}</Link></li>
            ))}
          </ul>
        </nav>
        <button type="button" className="secondary" onClick={signOut}>Sign out</button>
      </header>
      <main id="main" ref={mainRef}>
        <Page key={path} path={path} query={query} />
      </main>
    </>
  );
}
