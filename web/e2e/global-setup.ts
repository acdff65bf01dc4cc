// Starts one `kubetrail demo` for the whole run and stops it at the end (the
// returned teardown runs on failure too). The tests find it through the
// environment, which the workers inherit.
import { startDemo } from './kubetrail';

export default async function globalSetup() {
  const started = Date.now();
  // Two hours of history hold the incident: with 100 minutes or more it is
  // placed 90 minutes before the end (simulate.Incident).
  const demo = await startDemo(process.env.KT_E2E_HISTORY ?? '2h');
  try {
    // The incident's session, as the server names it (what `kubetrail sessions
    // 'ka.user.name = john.doe'` prints): the tests check the UI reaches it.
    const q = new URLSearchParams({ filter: 'ka.user.name = john.doe', since: '24h' });
    const res = await fetch(`${demo.url}/api/v1/sessions?${q}`, { headers: { Authorization: `Bearer ${demo.token}` } });
    if (!res.ok) throw new Error(`GET /api/v1/sessions: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { sessions?: { 'session.id': string }[] };
    const session = body.sessions?.[0]?.['session.id'];
    if (!session) throw new Error(`john.doe has no session in the demo:\n${demo.output()}`);
    process.env.KT_E2E_URL = demo.url;
    process.env.KT_E2E_TOKEN = demo.token;
    process.env.KT_E2E_SESSION = session;
  } catch (err) {
    await demo.stop();
    throw err;
  }
  console.log(`kubetrail demo on ${demo.url}, history played in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return () => demo.stop();
}
