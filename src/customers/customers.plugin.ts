import type { DomainPlugin } from '../plugin/registry.ts';
import { registerCustomerRoutes } from './customers.routes.ts';
import { createCustomersService } from './customers.service.ts';
import { createSubjectExport, registerSubjectExportRoute, type SubjectExport } from './subject-export.ts';

declare module '../plugin/registry.ts' {
  interface Ports {
    /** Every record held about a living customer, as one document (read inside the caller's transaction). */
    subjectExport: SubjectExport;
  }
}

/** Customers, their collections (collections.ts), profile photos, activity, the data-subject export. */
export const customersPlugin: DomainPlugin = {
  name: 'customers',
  plug(ctx, r) {
    // License observers of every domain run, in order, inside the license's transaction.
    const observers = () => r.registry().licenseObservers;
    const customers = createCustomersService(ctx, {
      licenseActivated: async (trx, c, a, at) => { for (const o of observers()) await o.licenseActivated(trx, c, a, at); },
      licenseCancelled: async (trx, c, a, at) => { for (const o of observers()) await o.licenseCancelled(trx, c, a, at); },
    });
    r.routes((app) => registerCustomerRoutes(app, customers));

    const subjectExport = createSubjectExport({ blobs: ctx.blobs, now: () => ctx.clock.now(), crypto: ctx.crypto });
    r.provide('subjectExport', subjectExport);
    r.routes((app) => registerSubjectExportRoute(app, ctx, subjectExport));
  },
};
