import * as m0001 from './migrations/0001-spine.ts';
import type { DomainPlugin } from '../plugin/registry.ts';

/**
 * The first migration: the tables the core domains share (customers and their collections, applications,
 * keys, audit, settings, deletions). Later domains each own their migrations.
 */
export const spinePlugin: DomainPlugin = {
  name: 'spine',
  migrations: { '0001-spine': m0001 },
};
