// The console's single-page app: sign-in with an organization API key, then the pages below (hash
// routes: the key never appears in a URL, and a reload keeps the page). Bundled by esbuild (assets.ts).
import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, session } from './api.ts';
import { errorText } from './format.ts';
import { useRoute } from './hooks.ts';
import { CatalogPage } from './pages/catalog.ts';
import { CustomerPage, CustomersPage } from './pages/customers.ts';
import { EventsPage } from './pages/events.ts';
import { InvoicePage, InvoicesPage } from './pages/invoices.ts';
import './style.css';

const NAV = [
  ['/events', 'Events'],
  ['/customers', 'Customers'],
  ['/invoices', 'Invoices'],
  ['/catalog', 'Catalog'],
] as const;

function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.verify(key.trim());
      session.signIn(key.trim());
      onSignedIn();
    } catch (err) {
      setError((err as { status?: number }).status === 401 ? 'That API key is not valid.' : errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <form class="card" onSubmit=${submit} data-testid="signin">
      <h1>Meterline console</h1>
      <p class="muted">Sign in with your organization's API key. It is kept in this browser tab only (session storage) and sent as a header.</p>
      <label>API key <input type="password" name="api_key" autocomplete="off" required value=${key} onInput=${(e: Event) => setKey((e.target as HTMLInputElement).value)} /></label>
      <button type="submit" disabled=${busy}>Sign in</button>
      ${error ? html`<div class="problem" role="alert">${error}</div>` : null}
    </form>
  </main>`;
}

function Page() {
  const { path, params } = useRoute();
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'customers' && parts[1]) return html`<${CustomerPage} key=${parts[1]} id=${parts[1]} params=${params} />`;
  if (parts[0] === 'customers') return html`<${CustomersPage} key=${params.toString()} params=${params} />`;
  if (parts[0] === 'invoices' && parts[1]) return html`<${InvoicePage} id=${parts[1]} />`;
  if (parts[0] === 'invoices') return html`<${InvoicesPage} params=${params} />`;
  if (parts[0] === 'catalog') return html`<${CatalogPage} />`;
  return html`<${EventsPage} params=${params} />`;
}

function App() {
  const [signedIn, setSignedIn] = useState(session.key() !== null);
  const { path } = useRoute();
  useEffect(() => {
    const out = () => setSignedIn(false);
    window.addEventListener('meterline:signed-out', out);
    return () => window.removeEventListener('meterline:signed-out', out);
  }, []);
  if (!signedIn) return html`<${SignIn} onSignedIn=${() => setSignedIn(true)} />`;
  return html`<div class="layout">
    <header>
      <strong class="brand">Meterline</strong>
      <nav>
        ${NAV.map(([href, label]) => html`<a href=${`#${href}`} class=${path.startsWith(href) ? 'active' : ''}>${label}</a>`)}
      </nav>
      <button class="link signout" onClick=${() => session.signOut()}>Sign out</button>
    </header>
    <main><${Page} /></main>
  </div>`;
}

const root = document.getElementById('app');
if (root) render(html`<${App} />`, root);
