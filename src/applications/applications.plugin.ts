import type { DomainPlugin } from '../plugin/registry.ts';
import { registerApplicationRoutes } from './applications.routes.ts';
import { createApplicationsService } from './applications.service.ts';

/** Applications (the systems notified of deletions) and their webhook settings. */
export const applicationsPlugin: DomainPlugin = {
  name: 'applications',
  plug(ctx, r) {
    const checkUrl = r.port('webhookUrlCheck');
    const applications = createApplicationsService(ctx, (url) => checkUrl()(url));
    r.routes((app) => registerApplicationRoutes(app, applications));
  },
};
