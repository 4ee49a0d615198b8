import { api, type Application, type Page } from './api.ts';

/** Every application (names for ids shown elsewhere). */
export async function loadApplications(): Promise<Application[]> {
  const out: Application[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<Application> = await api('GET', '/v1/applications', { query: { limit: 500, cursor } });
    out.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor && out.length < 10_000);
  return out;
}

export function nameOf(apps: Application[] | null, id: string): string {
  return apps?.find((a) => a.id === id)?.name ?? id;
}
